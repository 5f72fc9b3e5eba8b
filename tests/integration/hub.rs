//! New models on the hub, end to end, against a fake hub on 127.0.0.1 started by each test: the model
//! listing, the revision API, and file downloads answered with the real hub's headers (`X-Repo-Commit`,
//! `ETag`, a 302 to a CDN path with `X-Linked-Etag`/`X-Linked-Size` for the weights, ranges honoured).
//! The hub serves the bundled lookbook checkpoints: `lookbook/checkpoints` has checkpoint-a at commit
//! `A` and checkpoint-b at `B` (`main`), and the watched author `melijauregui` has `cherrypick-sigLip5`
//! (registered) and `cherrypick-sigLip6` (new, checkpoint-a's files). fitcheck runs as a subprocess
//! with `HF_ENDPOINT` pointing at the fake hub and a temporary `HF_HOME`; a fake `gh` first on `PATH`
//! records what the pull-request script asks of GitHub.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2";
const SIGLIP5: &str = "5555555555555555555555555555555555555555";
const SIGLIP6: &str = "6666666666666666666666666666666666666666";
const TOKEN: &str = "hf_fake_secret_never_printed";
const FILES: [&str; 7] = [
    "config.json",
    "model.safetensors",
    "open_clip_config.json",
    "preprocessor_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
];

/// What the next weights download does.
const SERVE: u8 = 0;
const CUT: u8 = 1;
const ERROR_500: u8 = 2;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// One request as the fake hub saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: Option<String>,
}

struct FakeHub {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    fault: Arc<AtomicU8>,
}

/// The files of each (repo, commit), and which commit each branch points at.
struct Content {
    commits: BTreeMap<(String, String), PathBuf>,
    branches: BTreeMap<(String, String), String>,
}

fn content() -> Content {
    let ckpt = |n: &str| Path::new(env!("CARGO_MANIFEST_DIR")).join("lookbook/checkpoints").join(n);
    let mut commits = BTreeMap::new();
    let mut branches = BTreeMap::new();
    for (repo, sha, dir, main) in [
        ("lookbook/checkpoints", A, "checkpoint-a", false),
        ("lookbook/checkpoints", B, "checkpoint-b", true),
        ("melijauregui/cherrypick-sigLip5", SIGLIP5, "checkpoint-b", true),
        ("melijauregui/cherrypick-sigLip6", SIGLIP6, "checkpoint-a", true),
        ("melijauregui/notes-cherrypick-sigLip", SIGLIP5, "checkpoint-b", true),
        ("private/model", SIGLIP5, "checkpoint-b", true),
    ] {
        commits.insert((repo.to_string(), sha.to_string()), ckpt(dir));
        if main {
            branches.insert((repo.to_string(), "main".to_string()), sha.to_string());
        }
    }
    Content { commits, branches }
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

/// Serves `bytes` honouring a `Range: bytes=a-[b]` header, as the hub and its CDN do.
fn serve_range(stream: &mut TcpStream, range: Option<&str>, bytes: &[u8], mut headers: Vec<(&str, String)>) {
    let total = bytes.len();
    let Some(spec) = range.and_then(|r| r.strip_prefix("bytes=")) else {
        return respond(stream, "200 OK", &headers, bytes);
    };
    let (a, b) = spec.split_once('-').unwrap();
    let start: usize = a.parse().unwrap();
    let end: usize = if b.is_empty() { total - 1 } else { b.parse::<usize>().unwrap().min(total - 1) };
    headers.push(("Content-Range", format!("bytes {start}-{end}/{total}")));
    respond(stream, "206 Partial Content", &headers, &bytes[start..=end]);
}

fn json_response(stream: &mut TcpStream, body: String, extra: Vec<(&str, String)>) {
    let mut headers = vec![("Content-Type", "application/json".to_string())];
    headers.extend(extra);
    respond(stream, "200 OK", &headers, body.as_bytes());
}

fn error(stream: &mut TcpStream, status: &str, code: &str) {
    let headers = [("Content-Type", "application/json".to_string()), ("X-Error-Code", code.to_string())];
    respond(stream, status, &headers, br#"{"error":"fake hub error"}"#);
}

fn handle(mut stream: TcpStream, url: &str, content: &Content, seen: &Mutex<Vec<Seen>>, fault: &AtomicU8) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let authorization = headers.get("authorization").cloned();
    seen.lock().unwrap().push(Seen { path: target.clone(), authorization: authorization.clone() });
    let authorised = authorization.as_deref() == Some(&format!("Bearer {TOKEN}"));
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let range = headers.get("range").map(String::as_str);

    if path == "/api/models" {
        // Two pages, linked as the hub links them; the search is a substring match over ids.
        if query.contains("cursor=2") {
            let body = r#"[{"_id":"3","id":"melijauregui/notes-cherrypick-sigLip","likes":0,"private":false}]"#;
            return json_response(&mut stream, body.into(), vec![]);
        }
        assert!(query.contains("author=melijauregui") && query.contains("search=cherrypick-sigLip"), "{query}");
        let body = r#"[{"_id":"1","id":"melijauregui/cherrypick-sigLip5","likes":0,"private":false,"tags":["open_clip"]},
                       {"_id":"2","id":"melijauregui/cherrypick-sigLip6","likes":0,"private":false,"tags":[]}]"#;
        let link = format!("<{url}/api/models?author=melijauregui&search=cherrypick-sigLip&cursor=2>; rel=\"next\"");
        return json_response(&mut stream, body.into(), vec![("Link", link)]);
    }
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let (repo, revision) = rest.split_once("/revision/").unwrap();
        let revision = revision.replace("%2F", "/");
        match repo {
            "html/model" => {
                let page = b"<!DOCTYPE html><html><body>Sign in</body></html>";
                return respond(&mut stream, "200 OK", &[("Content-Type", "text/html".into())], page);
            }
            "gated/model" => return error(&mut stream, "403 Forbidden", "GatedRepo"),
            "slow/model" => {
                std::thread::sleep(std::time::Duration::from_secs(3));
                return json_response(&mut stream, format!(r#"{{"sha":"{A}"}}"#), vec![]);
            }
            "private/model" if !authorised => return error(&mut stream, "401 Unauthorized", "RepoNotFound"),
            _ => {}
        }
        if !content.commits.keys().any(|(r, _)| r == repo) {
            return error(&mut stream, "404 Not Found", "RepoNotFound");
        }
        let sha =
            content.branches.get(&(repo.to_string(), revision.clone())).cloned().or_else(|| {
                content.commits.contains_key(&(repo.to_string(), revision.clone())).then(|| revision.clone())
            });
        return match sha {
            Some(sha) => json_response(&mut stream, format!(r#"{{"_id":"x","id":"{repo}","sha":"{sha}"}}"#), vec![]),
            None => error(&mut stream, "404 Not Found", "RevisionNotFound"),
        };
    }
    if let Some(hash) = path.strip_prefix("/cdn/") {
        // The CDN: content addressed, no commit headers, ranges honoured; faults are injected here.
        let dir =
            content.commits.values().find(|d| sha256(&std::fs::read(d.join("model.safetensors")).unwrap()) == hash);
        let bytes = std::fs::read(dir.unwrap().join("model.safetensors")).unwrap();
        let whole_file = range.is_none_or(|r| r != "bytes=0-0");
        match fault.load(Ordering::SeqCst) {
            CUT if whole_file => {
                // Promise every byte, send half, hang up.
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", bytes.len());
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&bytes[..bytes.len() / 2]);
                return;
            }
            ERROR_500 if whole_file => return error(&mut stream, "500 Internal Server Error", "Internal"),
            _ => return serve_range(&mut stream, range, &bytes, vec![("ETag", format!("\"{hash}\""))]),
        }
    }
    // /{org}/{name}/resolve/{revision}/{file}
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
    if parts.len() == 5 && parts[2] == "resolve" {
        let repo = format!("{}/{}", parts[0], parts[1]);
        let revision = parts[3].replace("%2F", "/");
        let sha = content.branches.get(&(repo.clone(), revision.clone())).cloned().unwrap_or(revision);
        let Some(dir) = content.commits.get(&(repo.clone(), sha.clone())) else {
            return error(&mut stream, "404 Not Found", "RevisionNotFound");
        };
        if repo == "private/model" && !authorised {
            return error(&mut stream, "401 Unauthorized", "RepoNotFound");
        }
        let file = parts[4];
        let Ok(bytes) = std::fs::read(dir.join(file)) else {
            let headers = [("X-Repo-Commit", sha.clone()), ("X-Error-Code", "EntryNotFound".to_string())];
            return respond(&mut stream, "404 Not Found", &headers, b"Entry not found");
        };
        if file == "model.safetensors" {
            // An LFS file: the hub answers with a redirect to the CDN, naming the content's hash.
            let hash = sha256(&bytes);
            let headers = [
                ("Location", format!("{url}/cdn/{hash}")),
                ("X-Repo-Commit", sha.clone()),
                ("ETag", "\"pointer-etag\"".to_string()),
                ("X-Linked-Etag", format!("\"{hash}\"")),
                ("X-Linked-Size", bytes.len().to_string()),
            ];
            return respond(&mut stream, "302 Found", &headers, b"");
        }
        // A small file stored in git: its etag is the git blob id.
        let mut git = sha1_like(&bytes);
        git.truncate(40);
        let headers = vec![("X-Repo-Commit", sha.clone()), ("ETag", format!("\"{git}\""))];
        return serve_range(&mut stream, range, &bytes, headers);
    }
    respond(&mut stream, "404 Not Found", &[], b"not found");
}

/// A stand-in for git's blob id (40 hex): any content hash serves as an etag.
fn sha1_like(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(format!("blob {}\0", bytes.len()));
    h.update(bytes);
    hex(&h.finalize())
}

fn start_hub() -> FakeHub {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let fault = Arc::new(AtomicU8::new(SERVE));
    let content = Arc::new(content());
    let (s, f, u) = (seen.clone(), fault.clone(), url.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (s, f, u, c) = (s.clone(), f.clone(), u.clone(), content.clone());
            std::thread::spawn(move || handle(stream, &u, &c, &s, &f));
        }
    });
    FakeHub { url, seen, fault }
}

/// A fitcheck command against the fake hub, with its own hub cache.
fn fitcheck(hub: &FakeHub, hf_home: &Path) -> Command {
    against(Command::new(env!("CARGO_BIN_EXE_fitcheck")), hub, hf_home)
}

/// `c` with the environment that points fitcheck at the fake hub and a hub cache of its own.
fn against(mut c: Command, hub: &FakeHub, hf_home: &Path) -> Command {
    c.env("HF_ENDPOINT", &hub.url)
        .env("HF_HOME", hf_home)
        .env("HF_TOKEN", TOKEN)
        .env("FITCHECK_CACHE", hf_home.join("embeddings"))
        .env("RAYON_NUM_THREADS", "2")
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("FITCHECK_OFFLINE")
        .env_remove("FITCHECK_MODEL")
        .env_remove("FITCHECK_REVISION")
        .env_remove("CI");
    c
}

fn run(mut c: Command) -> (i32, String, String) {
    let Output { status, stdout, stderr } = c.output().unwrap();
    let (out, err) = (String::from_utf8_lossy(&stdout).into_owned(), String::from_utf8_lossy(&stderr).into_owned());
    assert!(!out.contains(TOKEN) && !err.contains(TOKEN), "the token was printed:\n{out}\n{err}");
    (status.code().unwrap_or(-1), out, err)
}

const WATCH: &str = r#"
[watch]
authors = [{ author = "melijauregui", name = "cherrypick-sigLip*" }]
repos = [{ hub = "lookbook/checkpoints", revision = "main" }]
"#;

/// A suite directory whose `[model]` is lookbook/checkpoints at A, with sigLip5 registered.
fn watch_suite(dir: &Path) -> PathBuf {
    let cases = dir.join("cases");
    std::fs::create_dir_all(&cases).unwrap();
    let text = format!(
        "[model]\nhub = \"lookbook/checkpoints\"\nrevision = \"{A}\"\n\n[catalog]\nroot = \"../catalog\"\n{WATCH}\n\
         [[checkpoints]]\nname = \"sigLip5\"\nhub = \"melijauregui/cherrypick-sigLip5\"\nrevision = \"{SIGLIP5}\"\n"
    );
    std::fs::write(cases.join("fitcheck.toml"), text).unwrap();
    cases
}

#[test]
fn hub_lists_what_the_suite_has_not_registered() {
    let hub = start_hub();
    let tmp = tempfile::tempdir().unwrap();
    let cases = watch_suite(tmp.path());
    let home = tmp.path().join("hf");

    let mut c = fitcheck(&hub, &home);
    c.args(["hub", "--suite"]).arg(&cases);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{err}");
    // lookbook/checkpoints' main moved from A (registered as [model]) to B; sigLip5 is registered at
    // its head; sigLip6 is new; notes-cherrypick-sigLip contains the search text but fails the glob.
    assert_eq!(
        out,
        format!(
            "lookbook/checkpoints {B} new commit on 'main' (registered: aaaaaaa)\n\
             melijauregui/cherrypick-sigLip6 {SIGLIP6} new repository\n"
        )
    );
    // The listing was followed to its second page, and every API request carried the token.
    let seen = hub.seen.lock().unwrap().clone();
    assert!(seen.iter().any(|s| s.path.contains("cursor=2")), "{seen:?}");
    assert!(seen.iter().all(|s| s.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))), "{seen:?}");

    let mut c = fitcheck(&hub, &home);
    c.args(["hub", "--json", "--suite"]).arg(&cases);
    let (code, out, _) = run(c);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["endpoint"], hub.url.as_str());
    let new = doc["new"].as_array().unwrap();
    assert_eq!(new.len(), 2);
    assert_eq!(new[1]["repo"], "melijauregui/cherrypick-sigLip6");
    assert_eq!(new[1]["sha"], SIGLIP6);
    assert_eq!(new[1]["revision"], "main");
    assert_eq!(new[1]["branch"], format!("fitcheck/melijauregui/cherrypick-sigLip6/{SIGLIP6}"));

    // A registered entry at a branch pins nothing: its head is still new.
    let text = std::fs::read_to_string(cases.join("fitcheck.toml")).unwrap();
    std::fs::write(
        cases.join("fitcheck.toml"),
        text.replace(&format!("revision = \"{SIGLIP5}\""), "revision = \"main\""),
    )
    .unwrap();
    let mut c = fitcheck(&hub, &home);
    c.args(["hub", "--suite"]).arg(&cases);
    let (_, out, _) = run(c);
    assert!(
        out.contains(&format!(
            "melijauregui/cherrypick-sigLip5 {SIGLIP5} new commit on 'main' (registered only at branch 'main', which pins no commit)\n"
        )),
        "{out}"
    );

    // One repository named on the command line (what a webhook relay sends).
    let one = |repo: &str, revision: &str, token: bool, extra: &[(&str, &str)]| {
        let mut c = fitcheck(&hub, &home);
        c.args(["hub", "--suite"]).arg(&cases).args(["--repo", repo, "--revision", revision]);
        if !token {
            c.env_remove("HF_TOKEN");
        }
        for (k, v) in extra {
            c.env(k, v);
        }
        run(c)
    };
    let (code, out, _) = one("private/model", "main", true, &[]);
    assert_eq!((code, out), (0, format!("private/model {SIGLIP5} new repository\n")));
    let (code, _, err) = one("lookbook/checkpoints", A, true, &[]);
    assert_eq!(code, 0, "{err}");

    // Bad input: each a clear error naming the repository and revision, exit status 2.
    let cases_errors = [
        (
            one("private/model", "main", false, &[]),
            "error: private/model@main: the hub refused the request (401 unauthorized): the repository does not exist, \
             or it is private or gated: check the id, or set HF_TOKEN to a token that can read it",
        ),
        (
            one("gated/model", "main", true, &[]),
            "error: gated/model@main: the hub denied access (403 forbidden): the token cannot read this repository: \
             request access on its page, or use a token with read access in HF_TOKEN",
        ),
        (
            one("nobody/nothing", "main", true, &[]),
            "error: nobody/nothing@main: repository 'nobody/nothing' not found (404): check the id",
        ),
        (
            one("lookbook/checkpoints", "no-such-branch", true, &[]),
            "error: lookbook/checkpoints@no-such-branch: revision 'no-such-branch' not found (404): name an existing \
             branch, tag or commit",
        ),
    ];
    for ((code, out, err), want) in cases_errors {
        assert_eq!((code, out.as_str(), err.trim_end()), (2, "", want));
    }
    let (code, _, err) = one("html/model", "main", true, &[]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with(&format!(
            "error: html/model@main: the hub at {} answered HTML instead of JSON for /api/models/html/model/revision/main",
            hub.url
        )),
        "{err}"
    );
    let (code, _, err) = one("slow/model", "main", true, &[("FITCHECK_HUB_TIMEOUT", "0.5")]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: slow/model@main: the hub at"), "{err}");
    assert!(err.contains("did not answer /api/models/slow/model/revision/main within 0.5 s"), "{err}");
    for var in ["HF_HUB_OFFLINE", "FITCHECK_OFFLINE"] {
        let before = hub.seen.lock().unwrap().len();
        let (code, _, err) = one("lookbook/checkpoints", "main", true, &[(var, "1")]);
        assert_eq!(code, 2);
        assert!(err.contains("offline mode is on (HF_HUB_OFFLINE or FITCHECK_OFFLINE)"), "{err}");
        assert!(err.contains("nothing to watch offline: unset it"), "{err}");
        assert_eq!(hub.seen.lock().unwrap().len(), before, "offline mode sent a request");
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fake `gh`: logs each call's arguments, one per line, keeps a copy of each body, and remembers
/// the pull request it opened so `pr list` finds it.
fn fake_gh(bin: &Path) {
    std::fs::create_dir_all(bin).unwrap();
    let script = r#"#!/bin/sh
for a in "$@"; do printf '%s ' "$a"; done >>"$GH_LOG"
echo >>"$GH_LOG"
prev=
for a in "$@"; do
    [ "$prev" = --body-file ] && cp "$a" "$GH_STATE.body"
    prev=$a
done
case "$1 $2" in
    "pr list") [ -f "$GH_STATE" ] && cat "$GH_STATE" ;;
    "pr create") echo 7 >"$GH_STATE"; echo "https://github.com/team/fitcheck/pull/7" ;;
esac
exit 0
"#;
    let gh = bin.join("gh");
    std::fs::write(&gh, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn a_new_model_becomes_one_pull_request_created_then_updated() {
    let hub = start_hub();
    let tmp = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The base branch: the repository's suite and snapshots (checkpoint-b's rankings), on origin.
    let origin = tmp.path().join("origin.git");
    let work = tmp.path().join("work");
    git(tmp.path(), &["init", "-q", "--bare", origin.to_str().unwrap()]);
    git(tmp.path(), &["clone", "-q", origin.to_str().unwrap(), work.to_str().unwrap()]);
    for d in ["cases", "snapshots", "lookbook/catalog", "lookbook/pairs", "lookbook/checkpoints/checkpoint-b"] {
        crate::common::copy_tree(&root.join(d), &work.join(d));
    }
    let suite = std::fs::read_to_string(work.join("cases/fitcheck.toml")).unwrap();
    std::fs::write(work.join("cases/fitcheck.toml"), format!("{suite}{WATCH}")).unwrap();
    std::fs::write(work.join(".gitignore"), "*.snap.new\n").unwrap();
    git(&work, &["checkout", "-q", "-b", "main"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "base"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let base_commit = git(&work, &["rev-parse", "HEAD"]);

    let bin = tmp.path().join("bin");
    fake_gh(&bin);
    let home = tmp.path().join("hf");
    let out = tmp.path().join("out");
    let gh_log = tmp.path().join("gh.log");
    let gh_state = tmp.path().join("gh.state");
    let script = |repo: &str, sha: &str| {
        let mut c = against(Command::new("bash"), &hub, &home);
        c.arg(root.join("scripts/ci/new-model.sh"))
            .args([repo, sha, work.to_str().unwrap()])
            .env("FITCHECK", env!("CARGO_BIN_EXE_fitcheck"))
            .env("OUT", &out)
            .env("GH_LOG", &gh_log)
            .env("GH_STATE", &gh_state)
            .env_remove("GITHUB_STEP_SUMMARY")
            .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()));
        run(c)
    };

    // sigLip6 carries checkpoint-a's weights: a regression against the accepted checkpoint-b.
    let branch = format!("fitcheck/melijauregui/cherrypick-sigLip6/{SIGLIP6}");
    let (code, stdout, stderr) = script("melijauregui/cherrypick-sigLip6", SIGLIP6);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("opened a pull request for"), "{stdout}");
    let log = std::fs::read_to_string(&gh_log).unwrap();
    let calls: Vec<&str> = log.lines().collect();
    let body_file = out.join("body.md");
    assert_eq!(
        calls,
        [
            format!("pr list --head {branch} --state open --json number --jq .[0].number // empty "),
            format!(
                "pr create --base main --head {branch} --title Adopt melijauregui/cherrypick-sigLip6@6666666 (regression) \
                 --body-file {} ",
                body_file.display()
            ),
        ]
    );
    let body = std::fs::read_to_string(tmp.path().join("gh.state.body")).unwrap();
    assert!(
        body.starts_with("> [!CAUTION]\n> **Regression.** `melijauregui/cherrypick-sigLip6@6666666` fails the gate"),
        "{body}"
    );
    let compare_md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(body.ends_with(&compare_md));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("compare.json")).unwrap()).unwrap();
    assert_eq!(json["runs"].as_array().unwrap().len(), 2);

    // The pushed branch pins [model] to the candidate, registers it and carries its snapshots;
    // origin's main is untouched.
    let pushed = git(&work, &["show", &format!("origin/{branch}:cases/fitcheck.toml")]);
    assert!(
        pushed.contains(&format!("[model]\nhub = \"melijauregui/cherrypick-sigLip6\"\nrevision = \"{SIGLIP6}\"\n")),
        "{pushed}"
    );
    assert!(pushed.ends_with(&format!(
        "\n[[checkpoints]]\nname = \"cherrypick-sigLip6@6666666\"\nhub = \"melijauregui/cherrypick-sigLip6\"\nrevision = \"{SIGLIP6}\"\n"
    )));
    let changed = git(&work, &["diff", "--name-only", "main", &format!("origin/{branch}")]);
    assert!(changed.lines().any(|l| l == "cases/fitcheck.toml"), "{changed}");
    assert!(changed.lines().filter(|l| l.starts_with("snapshots/")).count() >= 1, "{changed}");
    assert_eq!(git(&work, &["rev-parse", "origin/main"]), base_commit);

    // The download landed in the cache as Python lays it out.
    let repo_cache = home.join("hub/models--melijauregui--cherrypick-sigLip6");
    let weights = std::fs::read(root.join("lookbook/checkpoints/checkpoint-a/model.safetensors")).unwrap();
    let etag = sha256(&weights);
    assert_eq!(std::fs::read(repo_cache.join("blobs").join(&etag)).unwrap(), weights);
    let link = std::fs::read_link(repo_cache.join("snapshots").join(SIGLIP6).join("model.safetensors")).unwrap();
    assert_eq!(link, Path::new("../../blobs").join(&etag));
    // Every download sent the token.
    let seen = hub.seen.lock().unwrap().clone();
    assert!(seen.iter().filter(|s| s.path.contains("/resolve/")).all(|s| s.authorization.is_some()), "{seen:?}");

    // A second run for the same revision updates the same pull request.
    git(&work, &["checkout", "-q", "main"]);
    let (code, stdout, stderr) = script("melijauregui/cherrypick-sigLip6", SIGLIP6);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("updated pull request #7"), "{stdout}");
    let log = std::fs::read_to_string(&gh_log).unwrap();
    let calls: Vec<&str> = log.lines().skip(2).collect();
    assert_eq!(calls.len(), 2, "{log}");
    assert!(calls[1]
        .starts_with("pr edit 7 --title Adopt melijauregui/cherrypick-sigLip6@6666666 (regression) --body-file"));
    assert!(!log.contains(TOKEN));

    // A revision that does not exist: nothing judged, nothing written, no pull request.
    git(&work, &["checkout", "-q", "main"]);
    let missing = "0000000000000000000000000000000000000000";
    let (code, _, stderr) = script("lookbook/checkpoints", missing);
    assert_eq!(code, 2);
    assert!(stderr.contains(&format!("lookbook/checkpoints@{missing}")), "{stderr}");
    assert!(stderr.contains("nothing could be judged"), "{stderr}");
    assert_eq!(git(&work, &["status", "--porcelain"]), "");
    assert_eq!(std::fs::read_to_string(&gh_log).unwrap().lines().count(), 4);
}

#[test]
fn downloads_fill_the_cache_as_python_does_and_never_leave_a_corrupt_file() {
    let hub = start_hub();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("hf");
    let embed = |offline: bool| {
        let mut c = fitcheck(&hub, &home);
        // Outside the crate, where `lookbook/checkpoints` would name the bundled directory.
        c.current_dir(tmp.path()).args([
            "embed",
            "--model",
            "lookbook/checkpoints",
            "--revision",
            "main",
            "--text",
            "jean azul",
        ]);
        if offline {
            c.arg("--offline");
        }
        run(c)
    };
    let repo_cache = home.join("hub/models--lookbook--checkpoints");
    let weights = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("lookbook/checkpoints/checkpoint-b/model.safetensors"),
    )
    .unwrap();
    let etag = sha256(&weights);
    let no_weights = |why: &str| {
        assert!(!repo_cache.join("blobs").join(&etag).exists(), "{why}: a blob was written");
        assert!(
            !repo_cache.join("snapshots").join(B).join("model.safetensors").exists(),
            "{why}: a snapshot link was written"
        );
    };

    for (fault, why) in [(CUT, "connection cut"), (ERROR_500, "server error")] {
        hub.fault.store(fault, Ordering::SeqCst);
        let (code, _, err) = embed(false);
        assert_eq!(code, 2, "{why}");
        assert!(
            err.starts_with("error: lookbook/checkpoints@main: cannot download 'model.safetensors'"),
            "{why}: {err}"
        );
        no_weights(why);
    }

    hub.fault.store(SERVE, Ordering::SeqCst);
    let (code, online, err) = embed(false);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(repo_cache.join("blobs").join(&etag)).unwrap(), weights);
    assert_eq!(std::fs::read_to_string(repo_cache.join("refs/main")).unwrap(), B);
    // Each fetched file is a relative link from snapshots/<sha>/ into blobs/, holding the served bytes.
    let snapshot = repo_cache.join("snapshots").join(B);
    let mut fetched: Vec<String> =
        std::fs::read_dir(&snapshot).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    fetched.sort();
    assert!(fetched.iter().all(|f| FILES.contains(&f.as_str())), "{fetched:?}");
    for file in ["model.safetensors", "open_clip_config.json", "tokenizer.json"] {
        assert!(fetched.iter().any(|f| f == file), "{file} not fetched: {fetched:?}");
    }
    let served = Path::new(env!("CARGO_MANIFEST_DIR")).join("lookbook/checkpoints/checkpoint-b");
    for file in &fetched {
        let link = std::fs::read_link(snapshot.join(file)).unwrap();
        assert!(link.starts_with("../../blobs") && link.components().count() == 4, "{file}: {}", link.display());
        assert_eq!(std::fs::read(snapshot.join(file)).unwrap(), std::fs::read(served.join(file)).unwrap(), "{file}");
    }
    let seen = hub.seen.lock().unwrap().clone();
    assert!(seen
        .iter()
        .filter(|s| s.path.contains("/resolve/"))
        .all(|s| s.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))));

    // Offline, from the cache alone: the same embedding and no request.
    let before = hub.seen.lock().unwrap().len();
    let (code, offline, err) = embed(true);
    assert_eq!(code, 0, "{err}");
    assert_eq!(offline, online);
    assert_eq!(hub.seen.lock().unwrap().len(), before);
}
