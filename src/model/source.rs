//! Finding a checkpoint's files: a local directory, or a hub repository through the hub cache.
//!
//! Files are fetched one by one, by name, never as a whole repository snapshot. Hub lookups go
//! through the cache first, laid out as Python's `huggingface_hub` and hf-hub lay it out
//! (`models--org--name/{blobs,refs,snapshots}`): a branch or tag is resolved through `refs/<name>`, a
//! 40-hex commit directly through `snapshots/<sha>/` (Python writes no `refs/<sha>` for it), and a
//! `.no_exist/<sha>/<file>` marker records a file the repository does not have. So a complete cache
//! needs no network even when not offline; only a file absent from the cache is downloaded (hf-hub
//! 0.5, honouring `HF_ENDPOINT`). A revision the repository does not have is an error saying so,
//! never a missing file: offline, when the cache has the repository but cannot resolve the
//! revision; online, when the hub's 404 carries `X-Error-Code: RevisionNotFound`. Offline (the spec's flag, or `HF_HUB_OFFLINE=1`) never touches the
//! network and names the file it could not find. The cache is `$HF_HUB_CACHE`, else `$HF_HOME/hub`,
//! else `~/.cache/huggingface/hub`; the token is `$HF_TOKEN`, else the token file beside the cache. The
//! token goes into request headers only: it is never printed, put in an error or in a fingerprint.

use std::path::{Path, PathBuf};

use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};

use crate::error::{Error, Result};

/// Where files come from.
pub enum Source {
    Dir(PathBuf),
    Hub(HubRepo),
}

/// A hub repository at a revision, with the cache and settings to fetch from it.
pub struct HubRepo {
    pub id: String,
    pub revision: String,
    pub offline: bool,
    cache_dir: PathBuf,
}

fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The hub cache directory, from the environment like Python's `huggingface_hub`.
pub fn cache_dir() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(dir) = var("HF_HUB_CACHE") {
        return PathBuf::from(dir);
    }
    // hf-hub's own lookup: `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
    Cache::from_env().path().clone()
}

/// The user's token: `$HF_TOKEN`, else `$HF_HOME/token` (or `~/.cache/huggingface/token`).
fn token() -> Option<String> {
    if let Some(t) = std::env::var("HF_TOKEN").ok().filter(|t| !t.trim().is_empty()) {
        return Some(t.trim().to_string());
    }
    Cache::from_env().token()
}

impl HubRepo {
    pub fn new(id: &str, revision: &str, offline: bool) -> HubRepo {
        let env_offline =
            std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "yes"));
        HubRepo {
            id: id.to_string(),
            revision: revision.to_string(),
            offline: offline || env_offline,
            cache_dir: cache_dir(),
        }
    }

    fn repo_dir(&self) -> PathBuf {
        self.cache_dir.join(format!("models--{}", self.id.replace('/', "--")))
    }

    /// The commit the revision resolves to in the cache, if known.
    pub fn commit(&self) -> Option<String> {
        if is_sha(&self.revision) {
            return Some(self.revision.clone());
        }
        let text = std::fs::read_to_string(self.repo_dir().join("refs").join(&self.revision)).ok()?;
        Some(text.trim().to_string()).filter(|s| !s.is_empty())
    }

    fn label(&self) -> String {
        format!("{}@{}", self.id, self.revision)
    }

    /// Whether the cache holds this repository at all (some revision of it was downloaded before).
    fn in_cache(&self) -> bool {
        self.repo_dir().is_dir()
    }

    /// The branches and tags the cache knows (`refs/<name>`, nested names such as `pr/1` included).
    fn cached_refs(&self) -> Vec<String> {
        let refs = self.repo_dir().join("refs");
        let mut names: Vec<String> = walkdir::WalkDir::new(&refs)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .filter_map(|e| e.path().strip_prefix(&refs).ok().map(|p| p.to_string_lossy().replace('\\', "/")))
            .collect();
        names.sort();
        names
    }

    /// Whether the cache can resolve the revision: a branch or tag through `refs/<name>`, a commit sha
    /// through `snapshots/<sha>/`.
    fn revision_cached(&self) -> bool {
        match self.commit() {
            Some(c) if is_sha(&self.revision) => {
                self.repo_dir().join("snapshots").join(&c).is_dir()
                    || self.repo_dir().join(".no_exist").join(&c).is_dir()
            }
            Some(_) => true,
            None => false,
        }
    }

    /// The error for a revision the repository does not have; `how` says how that was found out.
    fn unknown_revision(&self, how: &str) -> Error {
        Error::model(
            self.label(),
            format!(
                "unknown revision '{}' of '{}' ({how}): give an existing branch, tag or commit sha",
                self.revision, self.id
            ),
        )
    }

    /// Why the hub answered 404 for `file`: its `X-Error-Code` header tells a revision or repository
    /// that does not exist from a missing file (hf-hub's error does not carry the headers, so the
    /// same request is made once more). `None` when the file is what is missing.
    fn why_not_found(&self, endpoint: &str, file: &str) -> Option<Error> {
        let url = format!("{endpoint}/{}/resolve/{}/{file}", self.id, self.revision.replace('/', "%2F"));
        let agent: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
        let mut request = agent.get(&url).header("Range", "bytes=0-0");
        if let Some(t) = token() {
            request = request.header("Authorization", format!("Bearer {t}"));
        }
        let response = request.call().ok()?;
        let code = response.headers().get("x-error-code")?.to_str().ok()?.to_string();
        match code.as_str() {
            "RevisionNotFound" => Some(self.unknown_revision("the hub answers 404 RevisionNotFound")),
            "RepositoryNotFound" => Some(Error::model(
                self.label(),
                format!(
                    "the hub has no repository '{}' (404 RepositoryNotFound): check the id, and set HF_TOKEN if it is private",
                    self.id
                ),
            )),
            _ => None,
        }
    }

    /// `Some(path)` if the cache has `file`, `Some(None)` if the cache knows the repo lacks it.
    fn cached(&self, file: &str) -> Option<Option<PathBuf>> {
        let commit = self.commit()?;
        let path = self.repo_dir().join("snapshots").join(&commit).join(file);
        if path.exists() {
            return Some(Some(path));
        }
        if self.repo_dir().join(".no_exist").join(&commit).join(file).exists() {
            return Some(None);
        }
        None
    }

    fn get(&self, file: &str) -> Result<Option<PathBuf>> {
        if let Some(found) = self.cached(file) {
            return Ok(found);
        }
        if self.offline {
            if self.in_cache() && !self.revision_cached() {
                let refs = self.cached_refs();
                let known = if refs.is_empty() { "none".to_string() } else { refs.join(", ") };
                return Err(self.unknown_revision(&format!(
                    "offline, and the hub cache at {} has no such branch, tag or commit; cached branches and tags: {known}",
                    self.repo_dir().display()
                )));
            }
            return Ok(None);
        }
        let mut builder =
            ApiBuilder::from_cache(Cache::new(self.cache_dir.clone())).with_progress(false).with_token(token());
        let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".into());
        builder = builder.with_endpoint(endpoint.clone());
        let api =
            builder.build().map_err(|e| Error::model(self.label(), format!("cannot set up the hub client: {e}")))?;
        let repo = api.repo(Repo::with_revision(self.id.clone(), RepoType::Model, self.revision.clone()));
        match repo.download(file) {
            Ok(path) => Ok(Some(path)),
            Err(ApiError::RequestError(e)) if matches!(*e, ureq::Error::StatusCode(404)) => {
                match self.why_not_found(endpoint.trim_end_matches('/'), file) {
                    Some(err) => Err(err),
                    None => Ok(None),
                }
            }
            Err(e) => Err(Error::model(
                self.label(),
                format!(
                    "cannot download '{file}': {e} (check the id and revision, set HF_TOKEN for a private repo, \
                     or use offline mode with a filled cache)"
                ),
            )),
        }
    }
}

impl Source {
    /// A label for messages: the directory, or `id@revision`.
    pub fn label(&self) -> String {
        match self {
            Source::Dir(d) => d.display().to_string(),
            Source::Hub(h) => h.label(),
        }
    }

    /// The path of `file`, or `None` when the checkpoint does not have it.
    pub fn get(&self, file: &str) -> Result<Option<PathBuf>> {
        match self {
            Source::Dir(d) => {
                let p = d.join(file);
                Ok(p.is_file().then_some(p))
            }
            Source::Hub(h) => h.get(file),
        }
    }

    /// Like [`Source::get`], but a missing file is an error that names it.
    pub fn require(&self, file: &str, why: &str) -> Result<PathBuf> {
        self.get(file)?.ok_or_else(|| self.missing(file, why))
    }

    /// The error for a file the checkpoint lacks.
    pub fn missing(&self, file: &str, why: &str) -> Error {
        match self {
            Source::Dir(d) => Error::file(&d.join(file), format!("not found ({why})")),
            Source::Hub(h) if h.offline => Error::model(
                h.label(),
                format!(
                    "'{file}' is not in the hub cache at {} ({why}): run once without offline mode, or download it with \
                     `huggingface-cli download {} {file} --revision {}`",
                    h.repo_dir().display(),
                    h.id,
                    h.revision
                ),
            ),
            Source::Hub(h) => Error::model(h.label(), format!("the repository has no '{file}' ({why})")),
        }
    }

    /// The revision for fingerprints: `local`, the commit, or `branch@commit`.
    pub fn revision(&self) -> String {
        match self {
            Source::Dir(_) => "local".into(),
            Source::Hub(h) => match h.commit() {
                Some(c) if c == h.revision => c,
                Some(c) => format!("{}@{c}", h.revision),
                None => h.revision.clone(),
            },
        }
    }

    /// A digest entry for `path`: the blob name for hub files (the blob is named by its hash), the
    /// SHA-256 of the bytes for local files.
    pub fn digest_of(&self, path: &Path) -> Result<String> {
        if let Source::Hub(_) = self {
            if let Ok(target) = std::fs::canonicalize(path) {
                let in_blobs = target.parent().and_then(Path::file_name).is_some_and(|n| n == "blobs");
                if let (true, Some(name)) = (in_blobs, target.file_name()) {
                    return Ok(name.to_string_lossy().into_owned());
                }
            }
        }
        Ok(crate::files::hex(&crate::files::sha256_file(path)?))
    }
}

/// How long one hub API request may take, unless `FITCHECK_HUB_TIMEOUT` (seconds) says otherwise.
const API_TIMEOUT_S: f64 = 30.0;

/// The hub's endpoint: `$HF_ENDPOINT` (a mirror or a private hub), else huggingface.co.
pub fn endpoint() -> String {
    let e = std::env::var("HF_ENDPOINT").ok().filter(|e| !e.trim().is_empty());
    e.unwrap_or_else(|| "https://huggingface.co".into()).trim().trim_end_matches('/').to_string()
}

/// Whether offline mode is asked for in the environment (`HF_HUB_OFFLINE`, `FITCHECK_OFFLINE`).
pub fn offline_from_env() -> bool {
    ["HF_HUB_OFFLINE", "FITCHECK_OFFLINE"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "yes")))
}

/// A repository the model listing returned: its id, and its head commit when the listing says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub sha: Option<String>,
}

/// The hub's JSON API, for what downloads do not need: listing an author's models and resolving a
/// branch to its commit. Requests carry the same token as downloads (hf-hub's client sends the
/// revision lookup itself), each has a time limit, and every failure becomes an error naming the
/// repository and revision it was about; the token never appears in one.
pub struct HubApi {
    endpoint: String,
    api: hf_hub::api::sync::Api,
    agent: ureq::Agent,
    token: Option<String>,
    timeout: std::time::Duration,
}

impl HubApi {
    /// The API at `$HF_ENDPOINT` with `$HF_TOKEN`; an error in offline mode, where there is nothing to ask.
    pub fn from_env() -> Result<HubApi> {
        let endpoint = endpoint();
        if offline_from_env() {
            return Err(Error::model(
                &endpoint,
                "offline mode is on (HF_HUB_OFFLINE or FITCHECK_OFFLINE): looking for new models needs the hub, \
                 so there is nothing to watch offline: unset it",
            ));
        }
        let seconds = match std::env::var("FITCHECK_HUB_TIMEOUT") {
            Err(_) => API_TIMEOUT_S,
            Ok(v) => v.trim().parse::<f64>().ok().filter(|s| *s > 0.0 && s.is_finite()).ok_or_else(|| {
                Error::model(
                    &endpoint,
                    format!("invalid FITCHECK_HUB_TIMEOUT '{v}': give a number of seconds, e.g. 30"),
                )
            })?,
        };
        let token = token();
        let api = ApiBuilder::from_cache(Cache::new(cache_dir()))
            .with_progress(false)
            .with_token(token.clone())
            .with_endpoint(endpoint.clone())
            .build()
            .map_err(|e| Error::model(&endpoint, format!("cannot set up the hub client: {e}")))?;
        Ok(HubApi {
            endpoint,
            api,
            agent: ureq::Agent::new_with_defaults(),
            token,
            timeout: std::time::Duration::from_secs_f64(seconds),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The commit `revision` (a branch, tag or sha) of repository `id` points at
    /// (`GET /api/models/<id>/revision/<revision>`, the `sha` of its answer).
    pub fn resolve(&self, id: &str, revision: &str) -> Result<String> {
        let label = format!("{id}@{revision}");
        let repo = self.api.repo(Repo::with_revision(id.to_string(), RepoType::Model, revision.to_string()));
        let request = repo.info_request();
        let (value, _) =
            self.json(request, &label, &format!("/api/models/{id}/revision/{revision}"), Some((id, revision)))?;
        match value.get("sha").and_then(|s| s.as_str()) {
            Some(sha) if is_sha(sha) => Ok(sha.to_string()),
            other => Err(Error::model(
                label,
                format!(
                    "the hub's revision answer has no commit sha (got {}): check that HF_ENDPOINT is a Hugging Face hub",
                    other.map_or("none".to_string(), |s| format!("'{s}'"))
                ),
            )),
        }
    }

    /// Every model of `author` whose name contains `search` (`GET /api/models?author=&search=`),
    /// following the listing's `Link: <...>; rel="next"` pages.
    pub fn list_models(&self, author: &str, search: &str) -> Result<Vec<Listed>> {
        let label = format!("models of '{author}' matching '{search}'");
        let mut out = Vec::new();
        let mut url = format!("{}/api/models", self.endpoint);
        let mut first = true;
        for _ in 0..1000 {
            let mut request = self.agent.get(&url);
            if first {
                request = request.query("author", author).query("search", search);
            }
            if let Some(t) = &self.token {
                request = request.header("Authorization", format!("Bearer {t}"));
            }
            let (value, next) = self.json(request, &label, "/api/models", None)?;
            let items = value.as_array().ok_or_else(|| {
                Error::model(
                    &label,
                    "the hub's model listing is not a JSON array: check that HF_ENDPOINT is a Hugging Face hub",
                )
            })?;
            for item in items {
                let id = item.get("id").or_else(|| item.get("modelId")).and_then(|v| v.as_str());
                let Some(id) = id else {
                    return Err(Error::model(&label, "an entry of the hub's model listing has no 'id'"));
                };
                let sha = item.get("sha").and_then(|v| v.as_str()).filter(|s| is_sha(s)).map(str::to_string);
                out.push(Listed { id: id.to_string(), sha });
            }
            match next {
                Some(n) => {
                    url = n;
                    first = false;
                }
                None => return Ok(out),
            }
        }
        Err(Error::model(&label, "the hub's model listing does not end (over 1000 pages): narrow the name pattern"))
    }

    /// Sends a GET and reads a JSON answer; returns it with the `rel="next"` link, if any. `repo` is
    /// the repository and revision asked about, for 404s.
    fn json(
        &self,
        request: ureq::RequestBuilder<ureq::typestate::WithoutBody>,
        label: &str,
        path: &str,
        repo: Option<(&str, &str)>,
    ) -> Result<(serde_json::Value, Option<String>)> {
        let fail = |msg: String| Error::model(label, msg);
        let response = request.config().timeout_global(Some(self.timeout)).http_status_as_error(false).build().call();
        let mut response = match response {
            Ok(r) => r,
            Err(ureq::Error::Timeout(_)) => {
                return Err(fail(format!(
                    "the hub at {} did not answer {path} within {} s: try again, check HF_ENDPOINT, or raise \
                     FITCHECK_HUB_TIMEOUT",
                    self.endpoint,
                    self.timeout.as_secs_f64()
                )))
            }
            Err(e) => {
                return Err(fail(format!(
                    "cannot reach the hub at {} for {path}: {e}: check HF_ENDPOINT and the network",
                    self.endpoint
                )))
            }
        };
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let code = header("x-error-code").unwrap_or_default();
        let status = response.status().as_u16();
        let content_type = header("content-type").unwrap_or_default();
        let next = header("link").and_then(|l| next_link(&l));
        match status {
            200..=299 => {}
            401 if self.token.is_some() => {
                return Err(fail(
                    "the hub refused the request (401 unauthorized): the repository does not exist or the token in \
                     HF_TOKEN cannot read it: check the id and the token"
                        .into(),
                ))
            }
            401 => {
                return Err(fail(
                    "the hub refused the request (401 unauthorized): the repository does not exist, or it is private \
                     or gated: check the id, or set HF_TOKEN to a token that can read it"
                        .into(),
                ))
            }
            403 => {
                return Err(fail(
                    "the hub denied access (403 forbidden): the token cannot read this repository: request access on \
                     its page, or use a token with read access in HF_TOKEN"
                        .into(),
                ))
            }
            404 => {
                return Err(fail(match repo {
                    Some((_, rev)) if code == "RevisionNotFound" => {
                        format!("revision '{rev}' not found (404): name an existing branch, tag or commit")
                    }
                    Some((id, _)) => format!("repository '{id}' not found (404): check the id"),
                    None => format!("the hub at {} has no {path} (404): check HF_ENDPOINT", self.endpoint),
                }))
            }
            _ => {
                let why = header("x-error-message").map(|m| format!(": {m}")).unwrap_or_default();
                return Err(fail(format!("the hub answered {status} for {path}{why}: try again later")));
            }
        }
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| fail(format!("the hub's answer to {path} was cut short: {e}: try again")))?;
        let looks_html = content_type.contains("html") || body.trim_start().starts_with('<');
        if looks_html {
            return Err(fail(format!(
                "the hub at {} answered HTML instead of JSON for {path}: HF_ENDPOINT must be the hub's address \
                 (not a web page, login page or proxy)",
                self.endpoint
            )));
        }
        let value = serde_json::from_str(&body)
            .map_err(|e| fail(format!("the hub's answer to {path} is not valid JSON ({e}): check HF_ENDPOINT")))?;
        Ok((value, next))
    }
}

/// The `rel="next"` URL of a `Link` header (`<https://...>; rel="next"`), as GitHub and the hub page.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| p.trim().replace(' ', "") == "rel=\"next\"");
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| url.to_string())
    })
}
