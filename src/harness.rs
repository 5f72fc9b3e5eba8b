//! The test harness: a suite directory becomes one libtest-mimic trial per case file.
//!
//! Discovery walks the cases directory in sorted order; a trial's name is the case path relative to it,
//! without `.toml`, with `/` on every OS, so `cargo test colores/` and `--exact` work as usual. A case
//! that fails to load becomes a failing trial of its own; the others still run. Finding no case at all is
//! an error, never a silent pass. The model is opened and the catalog embedded once per process, on the
//! first trial that needs them (and cached on disk across processes, see [`crate::cache`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};

use libtest_mimic::{Arguments, Failed, Trial};

use crate::cache;
use crate::case::{self, Case};
use crate::catalog::Catalog;
use crate::embed::{Embedder, ModelSource, ModelSpec};
use crate::error::{Error, Result};
use crate::outcome::Outcome;
use crate::rank::normalize;
use crate::report::{self, Status, SummaryRow};
use crate::snapshot;
use crate::suite::{Suite, SUITE_FILE};
use crate::toy::ToyEmbedder;

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
    pub case: std::result::Result<Case, String>,
}

/// The model and the catalog's embeddings, built once.
struct Context {
    embedder: Box<dyn Embedder>,
    items: Vec<Vec<f32>>,
}

/// A case judged by the model.
pub struct Judged {
    pub outcome: Outcome,
    /// The snapshot body (also the core of a failure message).
    pub body: String,
    /// The accepted snapshot file, read once for both score stability and the diff.
    pub accepted: Option<String>,
}

/// A loaded suite with its catalog and cases, and the model once it is needed.
pub struct Session {
    pub suite: Suite,
    pub catalog: std::result::Result<Catalog, String>,
    pub cases: Vec<Discovered>,
    cache_dir: Option<PathBuf>,
    context: OnceLock<std::result::Result<Context, String>>,
}

/// Makes `path` relative to the working directory when it lies under it, so messages stay short and
/// free of absolute paths.
fn relative(path: &Path) -> PathBuf {
    match std::env::current_dir() {
        Ok(cwd) => path.strip_prefix(&cwd).map(Path::to_owned).unwrap_or_else(|_| path.to_owned()),
        Err(_) => path.to_owned(),
    }
}

/// Finds every case file under `dir`, sorted, skipping the suite file at its top.
pub fn discover(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_owned();
            Error::io(&path, e.into())
        })?;
        let path = entry.path();
        let is_toml = path.extension().is_some_and(|e| e == "toml");
        if entry.file_type().is_file() && is_toml && path != dir.join(SUITE_FILE) {
            found.push(path.to_owned());
        }
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
        let catalog = Catalog::load(&suite.catalog_root, suite.manifest.as_deref()).map_err(|e| e.to_string());
        let cases = files
            .into_iter()
            .map(|path| {
                let name = case::name_of(&suite.dir, &path);
                let case = match &catalog {
                    Ok(catalog) => case::load(&path, name.clone(), &suite, catalog).map_err(|e| e.to_string()),
                    Err(e) => Err(format!("cannot load the catalog: {e}")),
                };
                Discovered { name, path, case }
            })
            .collect();
        Ok(Session { suite, catalog, cases, cache_dir, context: OnceLock::new() })
    }

    fn context(&self) -> std::result::Result<&Context, String> {
        self.context
            .get_or_init(|| {
                let catalog = self.catalog.as_ref().map_err(Clone::clone)?;
                let embedder = open_model(&self.suite.model, catalog).map_err(|e| e.to_string())?;
                let (items, _) = cache::embed_catalog(embedder.as_ref(), catalog, self.cache_dir.as_deref())
                    .map_err(|e| e.to_string())?;
                Ok(Context { embedder, items })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The fingerprint of the model, opening it if needed.
    pub fn fingerprint(&self) -> std::result::Result<&crate::Fingerprint, String> {
        self.context().map(|c| c.embedder.fingerprint())
    }

    /// Ranks the catalog for `case` and computes its metrics and snapshot body.
    pub fn judge(&self, case: &Case) -> std::result::Result<Judged, String> {
        let ctx = self.context()?;
        let catalog = self.catalog.as_ref().map_err(Clone::clone)?;
        let mut query = ctx
            .embedder
            .embed_texts(std::slice::from_ref(&case.description))
            .map_err(|e| e.to_string())?
            .pop()
            .ok_or("the model returned no embedding for the query")?;
        normalize(&mut query);
        let outcome = Outcome::evaluate(case, catalog, &ctx.items, &query);
        let accepted = snapshot::read_accepted(&self.suite.snapshots_dir, &case.name);
        let scores = accepted.as_deref().map(snapshot::accepted_scores).unwrap_or_default();
        let body = report::case_body(case, catalog, &outcome, &scores);
        Ok(Judged { outcome, body, accepted })
    }

    /// Runs one case as a trial: thresholds, known-failure mark and snapshot.
    fn trial(&self, index: usize) -> std::result::Result<(), Failed> {
        let found = &self.cases[index];
        let case = found.case.as_ref().map_err(|e| Failed::from(e.as_str()))?;
        let judged = self.judge(case).map_err(Failed::from)?;
        let fingerprint = self.fingerprint().map_err(Failed::from)?;
        let snap = snapshot::path_of(&self.suite.snapshots_dir, &case.name);
        let snapshot = snapshot::assert(
            &self.suite.snapshots_dir,
            &case.name,
            &found.path.to_string_lossy().replace('\\', "/"),
            fingerprint,
            &judged.body,
            judged.accepted.as_deref(),
        );
        let mut problems = Vec::new();
        match (judged.outcome.passed(), &case.known_failure) {
            (false, None) => problems.push(format!(
                "{}\n\n{}\nsnapshot: {}\nif the model is right and the case is wrong, edit {}",
                report::failed_checks(&judged.outcome.checks, case.k),
                judged.body,
                relative(&snap).display(),
                found.path.display()
            )),
            (true, Some(reason)) => problems.push(format!(
                "this known failure passes now ({reason}): remove its 'known_failure' line from {}",
                found.path.display()
            )),
            _ => {}
        }
        match snapshot {
            Ok(()) => {}
            Err(snapshot::Mismatch::New) => problems.push(format!(
                "no snapshot accepted yet for this case: review the new one with 'cargo insta review' (it goes to {})",
                relative(&snap).display()
            )),
            Err(snapshot::Mismatch::Changed(diff)) => problems.push(format!(
                "the ranking differs from the accepted snapshot {}: review it with 'cargo insta review'\n{diff}",
                relative(&snap).display()
            )),
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n\n").into())
        }
    }

    /// The status of a case and its metrics, for summaries.
    pub fn status(&self, index: usize) -> (Status, Option<Judged>) {
        let Ok(case) = &self.cases[index].case else { return (Status::Error, None) };
        if case.ignore.is_some() {
            return (Status::Ignored, None);
        }
        match self.judge(case) {
            Err(_) => (Status::Error, None),
            Ok(j) => {
                let status = match (j.outcome.passed(), case.known_failure.is_some()) {
                    (true, false) => Status::Passed,
                    (false, false) => Status::Failed,
                    (false, true) => Status::KnownFailure,
                    (true, true) => Status::Fixed,
                };
                (status, Some(j))
            }
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

/// Silences the default panic message of snapshot mismatches: insta has already printed the diff, and
/// the trial reports the failure itself.
fn quiet_snapshot_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if !msg.starts_with("snapshot assertion") {
            default(info);
        }
    }));
}

/// Runs the suite in `dir` as a libtest-mimic harness with `args`; the `harness = false` test target and
/// `fitcheck test` both call this.
pub fn run(dir: &Path, args: Arguments) -> ExitCode {
    // Trials print nothing themselves: the snapshot diff goes into the failure message instead.
    if std::env::var_os("INSTA_OUTPUT").is_none() {
        std::env::set_var("INSTA_OUTPUT", "none");
    }
    if std::env::var_os("INSTA_WORKSPACE_ROOT").is_none() {
        if let Some(root) = std::path::absolute(dir).ok().and_then(|d| d.parent().map(Path::to_owned)) {
            // Called before any trial thread starts.
            std::env::set_var("INSTA_WORKSPACE_ROOT", root);
        }
    }
    let session = match Session::open(dir, &Overrides::from_env()) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    quiet_snapshot_panics();
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

/// What `fitcheck run` produces: the summary text, machine-readable results at full precision, and
/// whether the suite passed.
pub struct RunReport {
    pub text: String,
    pub json: serde_json::Value,
    pub ok: bool,
}

/// Runs every case of the suite in `dir` and builds the per-case summary and the suite's means.
pub fn summarize(dir: &Path, overrides: &Overrides) -> Result<RunReport> {
    let session = Session::open(dir, overrides)?;
    let fp = session.fingerprint().map_err(Error::Rendered)?;
    let judged: Vec<(Status, Option<Judged>)> = (0..session.cases.len()).map(|i| session.status(i)).collect();
    let rows: Vec<SummaryRow> = session
        .cases
        .iter()
        .zip(&judged)
        .map(|(found, (status, j))| SummaryRow {
            name: &found.name,
            status: *status,
            metrics: j.as_ref().map(|j| &j.outcome.metrics),
            groups: found.case.as_ref().map(report::groups_of).unwrap_or_default(),
        })
        .collect();
    let mut text = format!("model: {} @ {} ({})\n\n", fp.model, fp.revision, fp.preprocessing);
    text.push_str(&report::summary(&rows));
    for found in &session.cases {
        if let Err(e) = &found.case {
            text.push_str(&format!("error: {e}\n"));
        }
    }
    let checks: Vec<Option<&[crate::threshold::Check]>> =
        judged.iter().map(|(_, j)| j.as_ref().map(|j| j.outcome.checks.as_slice())).collect();
    let json = report::results_json(fp, &rows, &checks);
    let ok = !rows.iter().any(|r| r.status.fails_suite());
    Ok(RunReport { text, json, ok })
}
