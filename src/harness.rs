//! The test harness: a suite directory becomes one libtest-mimic trial per case file.
//!
//! Discovery walks the cases directory in sorted order; a trial's name is the case path relative to it,
//! without `.toml`, with `/` on every OS, so `cargo test colores/` and `--exact` work as usual. A case
//! that fails to load becomes a failing trial of its own; the others still run. Finding no case at all is
//! an error, never a silent pass. The model is opened and the catalog embedded once per process, on the
//! first trial that needs them (and cached on disk across processes, see [`crate::cache`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};

use libtest_mimic::{Arguments, Failed, Trial};

use crate::cache;
use crate::case::{self, Case};
use crate::catalog::Catalog;
use crate::embed::{unit_vectors, Embedder, ModelSource, ModelSpec};
use crate::error::{Error, Result};
use crate::metrics::Class;
use crate::outcome::Outcome;
use crate::report;
use crate::result::{CaseResult, CatalogInfo, ModelInfo, RunResult, SnapshotState, SnapshotStatus};
use crate::snapshot::{self, Accepted};
use crate::suite::{Suite, SUITE_FILE};
use crate::toy::ToyEmbedder;
use crate::verdict::Verdict;
use sha2::Digest;

/// Per-run settings that override the suite file, from flags or `FITCHECK_*` variables.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// A checkpoint directory or hub id (`FITCHECK_MODEL`).
    pub model: Option<String>,
    /// The hub revision (`FITCHECK_REVISION`).
    pub revision: Option<String>,
    /// Use only the local hub cache (`FITCHECK_OFFLINE=1`).
    pub offline: bool,
    /// Where catalog embeddings are cached; `off` disables (`FITCHECK_CACHE`).
    pub cache: Option<String>,
}

impl Overrides {
    pub fn from_env() -> Overrides {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Overrides {
            model: var("FITCHECK_MODEL"),
            revision: var("FITCHECK_REVISION"),
            offline: var("FITCHECK_OFFLINE").is_some_and(|v| v != "0"),
            cache: var("FITCHECK_CACHE"),
        }
    }
}

/// A case file found by discovery, loaded or not.
pub struct Discovered {
    pub name: String,
    pub path: PathBuf,
    pub case: Result<Case>,
}

impl Discovered {
    /// The case file as messages and results show it: relative, with `/`.
    pub fn file(&self) -> String {
        self.path.to_string_lossy().replace('\\', "/")
    }
}

/// The model and the catalog's and queries' embeddings, built once.
///
/// The model is described, not loaded: its weights are read on the first embedding the cache does not
/// have, so a warm run never reads them (see [`crate::cache`]).
/// Each image query's embedding by path, normalised, or why it could not be embedded.
type ImageQueries = HashMap<PathBuf, Result<Vec<f32>>>;

struct Context {
    embedder: Box<dyn Embedder>,
    items: Vec<Vec<f32>>,
    catalog_digest: String,
    /// Each catalog item's content hash (an image query leaves out every item with its content).
    hashes: Vec<[u8; 32]>,
    /// Each loaded case's query, normalised, or why it could not be embedded.
    queries: HashMap<String, Result<Vec<f32>>>,
    /// Each image query's embedding by path, normalised, or why it could not be embedded.
    image_queries: ImageQueries,
    /// Cache shards that were ignored, and why.
    warnings: Vec<String>,
}

/// One case, run: its result (with the one verdict) and the snapshot it is compared with.
pub struct CaseRun {
    pub result: CaseResult,
    /// The accepted snapshot, when there is one.
    pub accepted: Option<Accepted>,
}

/// A loaded suite with its catalog and cases, and the model once it is needed.
pub struct Session {
    pub suite: Suite,
    catalog: Result<Catalog>,
    pub cases: Vec<Discovered>,
    cache_dir: Option<PathBuf>,
    context: OnceLock<Result<Context>>,
    /// The checkpoint's name in results (its registry name), when not its source.
    pub name: Option<String>,
}

/// Makes `path` relative to the working directory when it lies under it, so messages stay short and
/// free of absolute paths.
fn relative(path: &Path) -> PathBuf {
    match std::env::current_dir() {
        Ok(cwd) => path.strip_prefix(&cwd).map(Path::to_owned).unwrap_or_else(|_| path.to_owned()),
        Err(_) => path.to_owned(),
    }
}

/// A case file found under the cases directory, or a path that looks like one and cannot be.
pub struct Found {
    pub path: PathBuf,
    /// Why this path cannot be a case (a directory named `*.toml`, a second file with the same name).
    pub problem: Option<Error>,
}

/// Finds every case file under `dir`, sorted, skipping the suite file at its top. Symbolic links are
/// followed (a linked case file is a case). A directory named like a case file, and two files whose
/// names give the same test name (they would share a snapshot), are reported, not skipped.
pub fn discover(dir: &Path) -> Result<Vec<Found>> {
    let mut found: Vec<Found> = Vec::new();
    let mut names: std::collections::HashMap<String, PathBuf> = std::collections::HashMap::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(true).sort_by_file_name() {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_owned();
            Error::io(&path, e.into())
        })?;
        let path = entry.path();
        let is_toml = path.extension().is_some_and(|e| e == "toml");
        if !is_toml || path == dir.join(SUITE_FILE) || entry.depth() == 0 {
            continue;
        }
        let problem = if entry.file_type().is_dir() {
            Some(Error::file(
                path,
                "a directory named like a case file: case files are files ending in '.toml'; rename the directory",
            ))
        } else {
            let name = case::name_of(dir, path);
            match names.get(&name) {
                Some(first) => Some(Error::file(
                    path,
                    format!(
                        "the test name '{name}' is already taken by {} (names are compared in Unicode NFC form): rename one of them",
                        first.display()
                    ),
                )),
                None => {
                    names.insert(name, path.to_owned());
                    None
                }
            }
        };
        found.push(Found { path: path.to_owned(), problem });
    }
    if found.is_empty() {
        return Err(Error::NoCases { dir: dir.to_owned() });
    }
    Ok(found)
}

impl Session {
    /// Loads the suite in `dir`, its catalog and every case file.
    pub fn open(dir: &Path, overrides: &Overrides) -> Result<Session> {
        let dir = relative(dir);
        let mut suite = Suite::load(&dir)?;
        if let Some(model) = &overrides.model {
            suite.model.source = ModelSource::from_override(model, overrides.revision.as_deref());
        } else if let (Some(rev), ModelSource::Hub { revision, .. }) = (&overrides.revision, &mut suite.model.source) {
            *revision = rev.clone();
        }
        suite.model.offline |= overrides.offline;
        let cache_dir = match overrides.cache.as_deref() {
            Some("off") => None,
            Some(d) => Some(PathBuf::from(d)),
            None => Some(match std::env::var_os("CARGO_TARGET_DIR") {
                Some(t) => PathBuf::from(t).join("fitcheck-cache"),
                None => crate::suite::join_clean(&suite.dir, "../target/fitcheck-cache"),
            }),
        };
        let files = discover(&suite.dir)?;
        let catalog = Catalog::load(&suite.catalog_root, suite.manifest.as_deref());
        let mut cases = Vec::new();
        for found in files {
            let name = case::name_of(&suite.dir, &found.path);
            let case = match (found.problem, &catalog) {
                (Some(problem), _) => Err(problem),
                (None, Ok(catalog)) => case::load(&found.path, name.clone(), &suite, catalog),
                (None, Err(e)) => Err(e.clone()),
            };
            // Each variant phrasing is a case of its own, right after the case it varies.
            let variants = case.as_ref().map(Case::variants).unwrap_or_default();
            cases.push(Discovered { name, path: found.path.clone(), case });
            for v in variants {
                cases.push(Discovered { name: v.name.clone(), path: found.path.clone(), case: Ok(v) });
            }
        }
        Ok(Session { suite, catalog, cases, cache_dir, context: OnceLock::new(), name: None })
    }

    /// Where catalog embeddings (and the HTML report's thumbnails) are cached; `None` when off.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache_dir.as_deref()
    }

    /// The catalog, or why it could not be loaded.
    pub fn catalog(&self) -> Result<&Catalog> {
        self.catalog.as_ref().map_err(Clone::clone)
    }

    fn context(&self) -> Result<&Context> {
        self.context
            .get_or_init(|| {
                let catalog = self.catalog()?;
                let dir = self.cache_dir.as_deref();
                let embedder: Box<dyn Embedder> =
                    Box::new(cache::TextCache::new(describe_model(&self.suite.model, catalog, dir)?, dir));
                let (embedded, image_queries) = self.embed_catalog_and_image_queries(embedder.as_ref(), catalog)?;
                let queries = self.embed_queries(embedder.as_ref())?;
                Ok(Context {
                    embedder,
                    items: embedded.vectors,
                    catalog_digest: embedded.digest,
                    hashes: embedded.hashes,
                    queries,
                    image_queries,
                    warnings: embedded.warnings,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The catalog's embeddings and every image query's, through the embedding cache together (a warm
    /// run loads no model for them). When that fails and there are image queries, one of them may be
    /// at fault: the catalog is embedded alone and each query image on its own, so that a broken query
    /// image fails its own case only. Non-finite embeddings concern every case.
    fn embed_catalog_and_image_queries(
        &self,
        embedder: &dyn Embedder,
        catalog: &Catalog,
    ) -> Result<(cache::Embedded, ImageQueries)> {
        let dir = self.cache_dir.as_deref();
        let mut paths: Vec<&Path> = self
            .cases
            .iter()
            .filter_map(|d| d.case.as_ref().ok()?.query_image.as_ref())
            .map(|q| q.path.as_path())
            .collect();
        paths.sort();
        paths.dedup();
        let fp = embedder.fingerprint();
        match cache::embed_catalog_and(embedder, catalog, &paths, dir) {
            Ok((embedded, vectors)) => {
                let queries = paths.iter().map(|p| p.to_path_buf()).zip(vectors.into_iter().map(Ok)).collect();
                Ok((embedded, queries))
            }
            Err(e @ Error::NonFinite { .. }) => Err(e),
            Err(e) if paths.is_empty() => Err(e),
            Err(_) => {
                let embedded = cache::embed_catalog(embedder, catalog, dir)?;
                let mut queries = HashMap::new();
                for path in paths {
                    let one = match cache::embed_paths(embedder, &[path], dir) {
                        Err(e @ Error::NonFinite { .. }) => return Err(e),
                        other => other.and_then(|(mut v, _)| {
                            v.pop()
                                .ok_or_else(|| Error::model(&fp.model, "the model returned no embedding for the query"))
                        }),
                    };
                    queries.insert(path.to_path_buf(), one);
                }
                Ok((embedded, queries))
            }
        }
    }

    /// Every loaded case's query, normalised: in one batch, or one by one when the batch fails (so that
    /// a query the model refuses fails its own case only). Non-finite embeddings concern every case.
    fn embed_queries(&self, embedder: &dyn Embedder) -> Result<HashMap<String, Result<Vec<f32>>>> {
        let mut texts: Vec<String> = self
            .cases
            .iter()
            .filter_map(|d| d.case.as_ref().ok())
            .filter(|c| c.query_image.is_none())
            .map(|c| c.description.clone())
            .collect();
        texts.sort();
        texts.dedup();
        let fp = embedder.fingerprint();
        let one = |t: &String| -> Result<Vec<f32>> {
            let v = embedder.embed_texts(std::slice::from_ref(t))?;
            unit_vectors(fp, "text", &[format!("'{t}'")], v)?
                .pop()
                .ok_or_else(|| Error::model(&fp.model, "the model returned no embedding for the query"))
        };
        let names: Vec<String> = texts.iter().map(|t| format!("'{t}'")).collect();
        match embedder.embed_texts(&texts).and_then(|v| unit_vectors(fp, "text", &names, v)) {
            Ok(vectors) if vectors.len() == texts.len() => {
                Ok(texts.into_iter().zip(vectors.into_iter().map(Ok)).collect())
            }
            Err(e @ Error::NonFinite { .. }) => Err(e),
            _ => texts
                .into_iter()
                .map(|t| match one(&t) {
                    Err(e @ Error::NonFinite { .. }) => Err(e),
                    r => Ok((t, r)),
                })
                .collect(),
        }
    }

    /// The model, opening it (and embedding the catalog) if needed.
    pub fn embedder(&self) -> Result<&dyn Embedder> {
        self.context().map(|c| c.embedder.as_ref())
    }

    /// What the snapshot header of `case` says for this model and catalog.
    pub fn snapshot_header(&self, found: &Discovered) -> Result<snapshot::Header> {
        let ctx = self.context()?;
        let fp = ctx.embedder.fingerprint();
        Ok(snapshot::Header {
            model: fp.model.clone(),
            revision: fp.revision.clone(),
            preprocessing: fp.preprocessing.clone(),
            catalog: format!("{} ({} items)", ctx.catalog_digest, ctx.items.len()),
            input_file: found.file(),
            query_image: found.case.as_ref().ok().and_then(|c| c.query_image.as_ref()).map(|q| q.label.clone()),
        })
    }

    /// Runs case `index`: ranks the catalog for its query, computes its metrics and its verdict. An
    /// ignored case is judged only when `ignored` is set (`--ignored`). The error is for what concerns
    /// every case (no catalog, a model that does not load or yields non-finite values); a problem with
    /// this case alone is a result with [`Verdict::Error`].
    pub fn run_case(&self, index: usize, ignored: bool) -> Result<CaseRun> {
        let found = &self.cases[index];
        let file = found.file();
        let case = match &found.case {
            Ok(case) => case,
            Err(e) => {
                let result = CaseResult::without_outcome(&found.name, &file, None, Verdict::Error, Some(e.to_string()));
                return Ok(CaseRun { result, accepted: None });
            }
        };
        if case.ignore.is_some() && !ignored {
            let result = CaseResult::without_outcome(&case.name, &file, Some(case), Verdict::Ignored, None);
            return Ok(CaseRun { result, accepted: None });
        }
        let ctx = self.context()?;
        let catalog = self.catalog()?;
        let errored = |e: Error| {
            let result =
                CaseResult::without_outcome(&case.name, &file, Some(case), Verdict::Error, Some(e.to_string()));
            Ok(CaseRun { result, accepted: None })
        };
        let accepted = match snapshot::read_accepted(&self.suite.snapshots_dir, &case.name) {
            Ok(a) => a,
            Err(e) => return errored(e),
        };
        let fp = ctx.embedder.fingerprint();
        let query = match &case.query_image {
            // Text queries were embedded together, once per session (and cached on disk).
            None => match ctx.queries.get(&case.description) {
                Some(Ok(v)) => v.clone(),
                Some(Err(e)) => return errored(Error::file(&found.path, format!("cannot embed the query: {e}"))),
                None => return errored(Error::file(&found.path, "the query was not embedded with the others")),
            },
            // Image queries were embedded with the catalog, through its cache.
            Some(q) => match ctx.image_queries.get(&q.path) {
                Some(Ok(v)) => v.clone(),
                Some(Err(e)) => return errored(Error::file(&found.path, format!("cannot embed the query: {e}"))),
                None => return errored(Error::file(&found.path, "the query image was not embedded with the others")),
            },
        };
        // An image query leaves out the image itself and every catalog image with the same content.
        let mut excluded = vec![false; catalog.len()];
        if let Some(q) = &case.query_image {
            let hash: [u8; 32] = match std::fs::read(&q.path) {
                Ok(bytes) => sha2::Sha256::digest(bytes).into(),
                Err(e) => return errored(Error::io(&q.path, e)),
            };
            for (i, h) in ctx.hashes.iter().enumerate() {
                excluded[i] = *h == hash;
            }
            let left = (0..catalog.len()).filter(|&i| !excluded[i] && case.classes[i] == Class::Expected).count();
            if left == 0 {
                return errored(Error::file(
                    &found.path,
                    "every expected item is the query image itself (or a copy of it): expect other items",
                ));
            }
        }
        // Near ties keep the accepted order only when the same checkpoint made it: another model's
        // order says nothing about this one's ties, and its metrics must be its exact scores'.
        let same_model = |a: &&Accepted| {
            a.header.model == fp.model && a.header.revision == fp.revision && a.header.preprocessing == fp.preprocessing
        };
        let prior = accepted.as_ref().filter(same_model).map(Accepted::order).unwrap_or_default();
        let outcome = Outcome::evaluate(case, catalog, &ctx.items, &query, &prior, &excluded);
        let verdict = Verdict::of(outcome.passed(), case.known_failure.is_some());
        let mut result = CaseResult::judged(&file, case, catalog, &outcome, verdict);
        result.excluded = (0..catalog.len()).filter(|&i| excluded[i]).map(|i| catalog.items()[i].id.clone()).collect();
        let body = report::snapshot_body(&result);
        result.snapshot = Some(SnapshotState {
            status: match &accepted {
                None => SnapshotStatus::New,
                Some(a) if snapshot::same_body(&a.body, &body) => SnapshotStatus::Matches,
                Some(_) => SnapshotStatus::Changed,
            },
            accepted_model: accepted.as_ref().map(|a| a.header.model.clone()),
            accepted_revision: accepted.as_ref().map(|a| a.header.revision.clone()),
            accepted_catalog: accepted.as_ref().map(|a| a.header.catalog.clone()).filter(|c| !c.is_empty()),
        });
        Ok(CaseRun { result, accepted })
    }

    /// Runs every case (ignored ones stay ignored) and gathers the results. An error means nothing
    /// could be judged.
    pub fn run(&self) -> Result<RunResult> {
        let ctx = self.context()?;
        let catalog = self.catalog()?;
        let cases = (0..self.cases.len()).map(|i| self.run_case(i, false).map(|r| r.result)).collect::<Result<_>>()?;
        let fp = ctx.embedder.fingerprint();
        Ok(RunResult::new(
            self.name.clone().unwrap_or_else(|| self.suite.model.source.to_string()),
            ModelInfo {
                source: self.suite.model.source.to_string(),
                model: fp.model.clone(),
                revision: fp.revision.clone(),
                preprocessing: fp.preprocessing.clone(),
                digest: fp.content.clone(),
            },
            CatalogInfo {
                root: self.suite.catalog_root.to_string_lossy().replace('\\', "/"),
                items: catalog.len(),
                digest: ctx.catalog_digest.clone(),
            },
            cases,
            self.truncation_warnings()?.into_iter().chain(ctx.warnings.iter().cloned()).collect(),
        ))
    }

    /// A warning for every query the model's context length cuts short.
    pub fn truncation_warnings(&self) -> Result<Vec<String>> {
        let embedder = self.embedder()?;
        let (Some(context), loaded) =
            (embedder.context_length(), self.cases.iter().filter_map(|d| d.case.as_ref().ok()))
        else {
            return Ok(Vec::new());
        };
        let cases: Vec<&Case> = loaded.filter(|c| c.query_image.is_none()).collect();
        let texts: Vec<String> = cases.iter().map(|c| c.description.clone()).collect();
        let Some(counts) = embedder.token_counts(&texts)? else { return Ok(Vec::new()) };
        Ok(cases
            .iter()
            .zip(counts)
            .filter(|(_, n)| *n > context)
            .map(|(c, n)| {
                format!(
                    "{}: the query '{}' has {n} tokens and the model reads {context}: the rest is cut off",
                    c.path.display(),
                    c.description
                )
            })
            .collect())
    }

    /// Runs one case as a trial: its verdict, then its snapshot.
    fn trial(&self, index: usize) -> std::result::Result<(), Failed> {
        let found = &self.cases[index];
        let run = self.run_case(index, true).map_err(|e| Failed::from(e.to_string()))?;
        let r = &run.result;
        let snap = relative(&snapshot::path_of(&self.suite.snapshots_dir, &found.name));
        let mut problems = Vec::new();
        match r.verdict {
            Verdict::Error => return Err(r.error.clone().unwrap_or_default().into()),
            Verdict::Failed => problems.push(format!(
                "{}\n\n{}\nsnapshot: {}\nif the model is right and the case is wrong, edit {}",
                report::failed_checks(&r.checks, r.k.unwrap_or(0)),
                report::case_report(r),
                snap.display(),
                found.path.display()
            )),
            Verdict::Fixed => problems.push(format!(
                "this known failure passes now ({}): remove its 'known_failure' line from {}",
                r.known_failure.as_deref().unwrap_or(""),
                found.path.display()
            )),
            Verdict::Passed | Verdict::KnownFailure | Verdict::Ignored => {}
        }
        let header = self.snapshot_header(found).map_err(|e| Failed::from(e.to_string()))?;
        let body = report::snapshot_body(r);
        let written = |w: &Option<PathBuf>| match w {
            Some(p) => format!("the new one is in {}; review it with 'cargo insta review'", relative(p).display()),
            None => "nothing was written (INSTA_UPDATE=no or CI); run without them to write it for review".into(),
        };
        match snapshot::check(
            &self.suite.snapshots_dir,
            &found.name,
            &header,
            &body,
            run.accepted.as_ref(),
            snapshot::Update::from_env(),
        ) {
            Ok(snapshot::Status::Matches) => {}
            // Written as the accepted snapshot (INSTA_UPDATE=always, or unseen for a new one): accepted,
            // as insta's own assertion treats it.
            Ok(snapshot::Status::New { written: Some(w) } | snapshot::Status::Changed { written: Some(w), .. })
                if w == snapshot::path_of(&self.suite.snapshots_dir, &found.name) => {}
            Ok(snapshot::Status::New { written: w }) => {
                problems.push(format!("no snapshot accepted yet for this case ({}): {}", snap.display(), written(&w)))
            }
            Ok(snapshot::Status::Changed { diff, written: w }) => problems.push(format!(
                "the ranking differs from the accepted snapshot {}: {}\n{diff}",
                snap.display(),
                written(&w)
            )),
            Err(e) => problems.push(format!("cannot write the snapshot: {e}")),
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n\n").into())
        }
    }
}

/// Opens the backend a model spec asks for.
pub fn open_model(spec: &ModelSpec, catalog: &Catalog) -> Result<Box<dyn Embedder>> {
    match &spec.source {
        ModelSource::Toy => Ok(Box::new(ToyEmbedder::new(catalog))),
        _ => crate::model::open(spec),
    }
}

/// Describes the backend a model spec asks for; its weights are read on first use. `dir` is the
/// cache directory, where a local checkpoint's digests are remembered.
pub fn describe_model(spec: &ModelSpec, catalog: &Catalog, dir: Option<&Path>) -> Result<Box<dyn Embedder>> {
    match &spec.source {
        ModelSource::Toy => Ok(Box::new(ToyEmbedder::new(catalog))),
        _ => crate::model::describe(spec, dir),
    }
}

/// Whether libtest would run the trial `name` under `args` (the same rules: substring or exact filter,
/// `--skip`, `--ignored`, `--include-ignored`).
fn would_run(args: &Arguments, name: &str, ignored: bool) -> bool {
    let matches = |f: &str| if args.exact { name == f } else { name.contains(f) };
    !args.list
        && args.filter.as_deref().is_none_or(matches)
        && !args.skip.iter().any(|s| matches(s))
        && (args.include_ignored || ignored == args.ignored)
}

/// Runs the suite in `dir` as a libtest-mimic harness with `args`; the `harness = false` test target and
/// `fitcheck test` both call this.
pub fn run(dir: &Path, args: Arguments) -> ExitCode {
    let session = match Session::open(dir, &Overrides::from_env()) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The catalog is embedded before the first trial line, so that its progress line (on a terminal)
    // and the warnings about ignored cache shards never interleave with libtest's output.
    let runs = |d: &Discovered| would_run(&args, &d.name, d.case.as_ref().is_ok_and(|c| c.ignore.is_some()));
    if session.cases.iter().any(runs) {
        if let Ok(ctx) = session.context() {
            for w in &ctx.warnings {
                eprintln!("warning: {w}");
            }
        }
    }
    let known: Arc<Mutex<Vec<String>>> = Arc::default();
    let trials = (0..session.cases.len())
        .map(|i| {
            let (s, known) = (Arc::clone(&session), Arc::clone(&known));
            let found = &session.cases[i];
            let ignored = found.case.as_ref().is_ok_and(|c| c.ignore.is_some());
            Trial::test(found.name.clone(), move || {
                let result = s.trial(i);
                if let (Ok(()), Ok(Case { known_failure: Some(_), name, .. })) = (&result, &s.cases[i].case) {
                    known.lock().unwrap().push(name.clone());
                }
                result
            })
            .with_ignored_flag(ignored)
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    let known = known.lock().unwrap();
    if !known.is_empty() {
        println!("known failures (still failing, as marked): {}\n", known.join(", "));
    }
    conclusion.exit_code()
}
