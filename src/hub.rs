//! New models on the hub: what the suite's `[watch]` table points at that the suite has not judged, and
//! the edit of the suite file that adopts one.
//!
//! A revision is *known* when `[model]` or a `[[checkpoints]]` entry names its repository pinned to that
//! commit sha; an entry at a branch (`revision = "main"`) pins nothing, since the branch moves, so its
//! head is reported until a pinned entry exists. Everything watched is resolved to a commit on the hub
//! (`fitcheck hub` needs the network: offline it is an error, never an empty list that would read as
//! "nothing new"). Results are sorted by repository and sha so two runs print the same thing.
//!
//! [`adopt`] edits the suite file's text rather than re-serialising it: only the `path`/`hub`/`revision`
//! lines of `[model]` change and one `[[checkpoints]]` entry is appended, so comments and layout survive
//! and the pull request's diff is exactly the adoption. The result is parsed back before it is written
//! (atomically), and a suite it would break is left untouched.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::json;

use crate::embed::ModelSource;
use crate::error::{Error, Result};
use crate::files::atomic_write;
use crate::model::source::HubApi;
use crate::suite::{is_hub_id, Suite};

/// A watched revision the suite does not know.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NewRevision {
    /// The hub id.
    pub repo: String,
    /// The commit sha.
    pub sha: String,
    /// The branch it was found on.
    pub revision: String,
    /// Why it is new, for people.
    pub why: String,
}

impl NewRevision {
    /// The git branch of its pull request: `fitcheck/<repo>/<sha>`.
    pub fn pr_branch(&self) -> String {
        pr_branch(&self.repo, &self.sha)
    }
}

/// The git branch of the pull request adopting `repo` at `sha`.
pub fn pr_branch(repo: &str, sha: &str) -> String {
    format!("fitcheck/{repo}/{sha}")
}

fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Every hub repository the suite names, with the revision it names it at.
fn registered(suite: &Suite) -> Vec<(String, String)> {
    std::iter::once(&suite.model.source)
        .chain(suite.checkpoints.iter().map(|c| &c.source))
        .filter_map(|s| match s {
            ModelSource::Hub { id, revision } => Some((id.clone(), revision.clone())),
            _ => None,
        })
        .collect()
}

/// The literal start of a glob (before its first wildcard): what the hub's substring search can use.
fn literal_prefix(glob: &str) -> &str {
    let end = glob.find(['*', '?', '[', '{', '\\']).unwrap_or(glob.len());
    &glob[..end]
}

/// Why `repo@sha` is new given the registry, or `None` when it is known.
fn why_new(registry: &[(String, String)], repo: &str, sha: &str, revision: &str) -> Option<String> {
    let of_repo: Vec<&str> = registry.iter().filter(|(id, _)| id == repo).map(|(_, r)| r.as_str()).collect();
    if of_repo.iter().any(|r| r.eq_ignore_ascii_case(sha)) {
        return None;
    }
    let pinned: Vec<&str> = of_repo.iter().copied().filter(|r| is_sha(r)).collect();
    let branches: Vec<&str> = of_repo.iter().copied().filter(|r| !is_sha(r)).collect();
    Some(if of_repo.is_empty() {
        "new repository".to_string()
    } else if pinned.is_empty() {
        let listed = branches.iter().map(|b| format!("'{b}'")).collect::<Vec<_>>().join(", ");
        format!("new commit on '{revision}' (registered only at branch {listed}, which pins no commit)")
    } else {
        let listed = pinned.iter().map(|s| s[..7].to_string()).collect::<Vec<_>>().join(", ");
        format!("new commit on '{revision}' (registered: {listed})")
    })
}

/// Resolves everything `[watch]` names on the hub and returns what the suite does not know.
pub fn find_new(suite: &Suite, api: &HubApi) -> Result<Vec<NewRevision>> {
    if suite.watch.authors.is_empty() && suite.watch.repos.is_empty() {
        return Err(Error::file(
            &suite.file,
            "nothing to watch: add a [watch] table, e.g. authors = [{ author = \"org\", name = \"model-*\" }] or \
             repos = [{ hub = \"org/model\", revision = \"main\" }]",
        ));
    }
    let mut watched: BTreeSet<(String, String)> = BTreeSet::new();
    for a in &suite.watch.authors {
        let glob = globset::GlobBuilder::new(&a.name)
            .literal_separator(true)
            .build()
            .map_err(|e| Error::file(&suite.file, format!("invalid name pattern '{}': {}", a.name, e.kind())))?
            .compile_matcher();
        for listed in api.list_models(&a.author, literal_prefix(&a.name))? {
            // The hub's search is a substring match over whole ids: keep the author's own repositories
            // whose name matches the glob.
            let name = listed.id.split_once('/').filter(|(owner, _)| *owner == a.author).map(|(_, n)| n);
            if name.is_some_and(|n| glob.is_match(n)) {
                watched.insert((listed.id, a.revision.clone()));
            }
        }
    }
    for r in &suite.watch.repos {
        watched.insert((r.hub.clone(), r.revision.clone()));
    }
    let registry = registered(suite);
    let mut out: Vec<NewRevision> = Vec::new();
    for (repo, revision) in watched {
        let sha = api.resolve(&repo, &revision)?;
        if out.iter().any(|n| n.repo == repo && n.sha == sha) {
            continue;
        }
        if let Some(why) = why_new(&registry, &repo, &sha, &revision) {
            out.push(NewRevision { repo, sha, revision, why });
        }
    }
    out.sort();
    Ok(out)
}

/// `fitcheck hub`'s text: one line per new revision (`repo sha why`).
pub fn text(new: &[NewRevision]) -> String {
    if new.is_empty() {
        return "nothing new: every watched repository is registered at its current commit\n".into();
    }
    new.iter().map(|n| format!("{} {} {}\n", n.repo, n.sha, n.why)).collect()
}

/// `fitcheck hub --json`: `{"endpoint": ..., "new": [{repo, sha, revision, why, branch}]}`.
pub fn json(endpoint: &str, new: &[NewRevision]) -> String {
    let items: Vec<_> = new
        .iter()
        .map(|n| json!({"repo": n.repo, "sha": n.sha, "revision": n.revision, "why": n.why, "branch": n.pr_branch()}))
        .collect();
    let doc = json!({ "endpoint": endpoint, "new": items });
    format!("{}\n", serde_json::to_string_pretty(&doc).expect("json values serialise"))
}

/// The registry name given to an adopted revision: the repository's name and the short sha.
pub fn default_name(repo: &str, sha: &str) -> String {
    let name = repo.rsplit('/').next().unwrap_or(repo);
    format!("{name}@{}", &sha[..7.min(sha.len())])
}

/// A TOML basic string holding `s`.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The key of a `key = value` line, if it is one.
fn key_of(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    Some(key.trim().trim_matches('"'))
}

/// Switches the suite's `[model]` to `repo` at `sha` and registers it in `[[checkpoints]]` (unless it
/// already is), editing only those lines of the suite file. Returns what was done, for people.
pub fn adopt(suite_dir: &Path, repo: &str, sha: &str, name: Option<&str>) -> Result<String> {
    let suite = Suite::load(suite_dir)?;
    let file = &suite.file;
    if !is_hub_id(repo) {
        return Err(Error::file(file, format!("invalid hub id '{repo}': write it as owner/name")));
    }
    if !is_sha(sha) {
        return Err(Error::file(
            file,
            format!("'{sha}' is not a commit sha: adopt a revision pinned by its 40-hex sha (see `fitcheck hub`)"),
        ));
    }
    if suite.model.source == ModelSource::Toy {
        return Err(Error::file(file, "[model] uses the toy backend: remove 'backend' to adopt a hub model"));
    }
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;

    // The [model] table's lines: from its header to the next header.
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let header = |l: &str| l.split('#').next().unwrap_or("").trim().to_string();
    let starts: Vec<usize> = (0..lines.len()).filter(|&i| header(lines[i]) == "[model]").collect();
    let [start] = starts[..] else {
        return Err(Error::file(file, "cannot find one '[model]' table header to edit: write [model] as a table"));
    };
    let end = (start + 1..lines.len()).find(|&i| lines[i].trim_start().starts_with('[')).unwrap_or(lines.len());
    let pin = format!("hub = {}\nrevision = {}\n", quoted(repo), quoted(sha));
    let mut edited = String::new();
    let mut placed = false;
    for (i, line) in lines.iter().enumerate() {
        let in_model = i > start && i < end;
        if in_model && key_of(line).is_some_and(|k| matches!(k, "path" | "hub" | "revision")) {
            if !placed {
                edited.push_str(&pin);
                placed = true;
            }
            continue;
        }
        edited.push_str(line);
        if i == start && !line.ends_with('\n') {
            edited.push('\n');
        }
        if i == start
            && !lines[start + 1..end]
                .iter()
                .any(|l| key_of(l).is_some_and(|k| matches!(k, "path" | "hub" | "revision")))
        {
            edited.push_str(&pin);
            placed = true;
        }
    }

    let source = ModelSource::Hub { id: repo.to_string(), revision: sha.to_string() };
    let already = suite.checkpoints.iter().find(|c| c.source == source).map(|c| c.name.clone());
    let registered_as = match already {
        Some(n) => n,
        None => {
            let name = name.map(str::to_string).unwrap_or_else(|| default_name(repo, sha));
            if suite.checkpoints.iter().any(|c| c.name == name) {
                return Err(Error::file(
                    file,
                    format!("a checkpoint named '{name}' is already registered: choose another name with --name"),
                ));
            }
            if !edited.ends_with('\n') {
                edited.push('\n');
            }
            edited.push_str(&format!(
                "\n[[checkpoints]]\nname = {}\nhub = {}\nrevision = {}\n",
                quoted(&name),
                quoted(repo),
                quoted(sha)
            ));
            name
        }
    };

    // Parse the result back before writing it: the edit must say exactly what was asked.
    let check: toml::Table = toml::from_str(&edited)
        .map_err(|e| Error::file(file, format!("cannot edit [model] in place ({}): edit it by hand", e.message())))?;
    let model = check.get("model").and_then(|m| m.as_table());
    let field = |k: &str| model.and_then(|m| m.get(k)).and_then(|v| v.as_str());
    if field("hub") != Some(repo) || field("revision") != Some(sha) || field("path").is_some() {
        return Err(Error::file(file, "cannot edit [model] in place (its keys are not plain lines): edit it by hand"));
    }
    atomic_write(file, edited.as_bytes())?;
    if let Err(e) = Suite::load(suite_dir) {
        atomic_write(file, text.as_bytes())?;
        return Err(e);
    }
    Ok(format!("switched [model] to {repo}@{sha} and registered it as '{registered_as}' in {}\n", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn known_means_pinned_to_that_sha() {
        let reg = vec![("o/pinned".to_string(), A.to_string()), ("o/branch".to_string(), "main".to_string())];
        assert_eq!(why_new(&reg, "o/pinned", A, "main"), None);
        assert_eq!(why_new(&reg, "o/pinned", B, "main").unwrap(), "new commit on 'main' (registered: aaaaaaa)");
        assert_eq!(
            why_new(&reg, "o/branch", B, "main").unwrap(),
            "new commit on 'main' (registered only at branch 'main', which pins no commit)"
        );
        assert_eq!(why_new(&reg, "o/other", A, "main").unwrap(), "new repository");
    }

    #[test]
    fn search_uses_the_glob_literal_start() {
        assert_eq!(literal_prefix("cherrypick-sigLip*"), "cherrypick-sigLip");
        assert_eq!(literal_prefix("a?b"), "a");
        assert_eq!(literal_prefix("*"), "");
        assert_eq!(literal_prefix("exact"), "exact");
    }

    #[test]
    fn adopting_edits_only_model_lines_and_appends_one_entry() {
        let dir = tempfile::tempdir().unwrap();
        let suite = "# the team's suite\n[model]\npath = \"../ckpt\"  # local for now\nalpha = \"drop\"\n\n\
                     [catalog]\nroot = \"../catalog\"\n\n[[checkpoints]]\nname = \"old\"\npath = \"../ckpt\"\n";
        std::fs::write(dir.path().join("fitcheck.toml"), suite).unwrap();
        let said = adopt(dir.path(), "org/model-6", B, None).unwrap();
        assert!(
            said.starts_with(&format!("switched [model] to org/model-6@{B} and registered it as 'model-6@bbbbbbb'"))
        );
        let after = std::fs::read_to_string(dir.path().join("fitcheck.toml")).unwrap();
        let want = format!(
            "# the team's suite\n[model]\nhub = \"org/model-6\"\nrevision = \"{B}\"\nalpha = \"drop\"\n\n\
             [catalog]\nroot = \"../catalog\"\n\n[[checkpoints]]\nname = \"old\"\npath = \"../ckpt\"\n\n\
             [[checkpoints]]\nname = \"model-6@bbbbbbb\"\nhub = \"org/model-6\"\nrevision = \"{B}\"\n"
        );
        assert_eq!(after, want);
        // Adopting it again changes nothing: it is already the model and registered.
        adopt(dir.path(), "org/model-6", B, None).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("fitcheck.toml")).unwrap(), want);
        // A bad sha is refused and the file is left as it was.
        let err = adopt(dir.path(), "org/model-6", "main", None).unwrap_err().to_string();
        assert!(
            err.ends_with("'main' is not a commit sha: adopt a revision pinned by its 40-hex sha (see `fitcheck hub`)"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(dir.path().join("fitcheck.toml")).unwrap(), want);
    }
}
