//! Loading checkpoints by hub id from a hub cache laid out as Python's `huggingface_hub` writes it
//! (`models--org--name/{blobs,refs,snapshots}`, snapshot entries symlinked into `blobs/`), under a
//! temporary `HF_HOME`, with no network (the hub's answers come from a stand-in on a loopback
//! port). The environment is process-wide, so this module holds a single test that runs every
//! scenario in turn.

use std::path::{Path, PathBuf};

use fitcheck::embed::{Embedder, ModelSource};
use fitcheck::model::Siglip;
use sha2::{Digest, Sha256};

use crate::common::spec;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const TOKEN: &str = "hf_secret_token_never_shown";

/// Caches `files` of `src` as repo `id` at commit `COMMIT`, with `refs/main` when `with_ref`.
fn cache_repo(hub: &Path, id: &str, src: &Path, files: &[&str], with_ref: bool) {
    let repo = hub.join(format!("models--{}", id.replace('/', "--")));
    let snapshot = repo.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(&snapshot).unwrap();
    for file in files {
        let bytes = std::fs::read(src.join(file)).unwrap();
        let blob: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(repo.join("blobs").join(&blob), &bytes).unwrap();
        link(&PathBuf::from("../../blobs").join(&blob), &snapshot.join(file));
    }
    if with_ref {
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
    }
}

#[cfg(unix)]
fn link(target: &Path, at: &Path) {
    std::os::unix::fs::symlink(target, at).unwrap();
}

#[cfg(not(unix))]
fn link(target: &Path, at: &Path) {
    std::fs::copy(at.parent().unwrap().join(target), at).unwrap();
}

fn open(id: &str, revision: &str, offline: bool) -> Result<Siglip, String> {
    let mut spec = spec(Path::new(""));
    spec.source = ModelSource::Hub { id: id.into(), revision: revision.into() };
    spec.offline = offline;
    Siglip::open(&spec).map_err(|e| e.to_string())
}

#[test]
fn loads_by_hub_id_from_a_python_laid_out_cache_without_network() {
    let home = tempfile::tempdir().unwrap();
    let hub = home.path().join("hub");
    let fixture = Path::new("tests/fixtures/siglip/tiny-a/marqo");
    let all = [
        "config.json",
        "model.safetensors",
        "open_clip_config.json",
        "preprocessor_config.json",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ];
    cache_repo(&hub, "fitcheck/tiny-a", fixture, &all, true);
    // A fine-tune pushed without its tokenizer: the tokenizer comes from the base repo its
    // config.json names (`hf-hub:fitcheck-fixtures/siglip-tiny-a`).
    cache_repo(&hub, "fitcheck/finetune", fixture, &all[..4], true);
    std::env::set_var("HF_HOME", home.path());
    std::env::remove_var("HF_HUB_CACHE");
    std::env::remove_var("HF_HUB_OFFLINE");
    std::env::set_var("HF_TOKEN", TOKEN);
    // Any attempt to reach the hub fails fast and loudly.
    std::env::set_var("HF_ENDPOINT", "http://127.0.0.1:9");

    let local = Siglip::open(&spec(fixture)).unwrap();
    let texts = vec!["vestido rojo".to_string()];
    let want = local.embed_texts(&texts).unwrap();

    // Offline through refs/main, offline by commit sha (Python writes no refs/<sha>), and online with
    // a complete cache: all three load the same model without touching the network.
    for (revision, offline) in [("main", true), (COMMIT, true), ("main", false), (COMMIT, false)] {
        let model = open("fitcheck/tiny-a", revision, offline).unwrap_or_else(|e| panic!("{revision} {offline}: {e}"));
        assert_eq!(model.embed_texts(&texts).unwrap(), want, "{revision} offline={offline}");
        let fp = model.fingerprint();
        assert_eq!(fp.model, "fitcheck/tiny-a");
        let expected_rev = if revision == "main" { format!("main@{COMMIT}") } else { COMMIT.to_string() };
        assert_eq!(fp.revision, expected_rev);
        // Hub files are digested by blob name (their SHA-256 here, as the hub names LFS blobs).
        assert!(fp.content.contains("model.safetensors="), "{}", fp.content);
        assert!(!format!("{fp:?}").contains(TOKEN));
    }

    // A fine-tune without tokenizer files: missing base repo → an error naming the file and the fix.
    let err = open("fitcheck/finetune", "main", true).err().unwrap_or_default();
    assert!(err.starts_with("fitcheck-fixtures/siglip-tiny-a@main: 'tokenizer.json' is not in the hub cache"), "{err}");
    assert!(err.contains("run once without offline mode"), "{err}");
    assert!(!err.contains(TOKEN));
    // With the base repo cached, its tokenizer is used.
    cache_repo(&hub, "fitcheck-fixtures/siglip-tiny-a", fixture, &all[4..], true);
    let finetune = open("fitcheck/finetune", "main", true).unwrap();
    assert_eq!(finetune.embed_texts(&texts).unwrap(), want);

    // Offline and not cached at all: the weights file is named.
    let err = open("fitcheck/absent", "main", true).err().unwrap_or_default();
    assert!(err.starts_with("fitcheck/absent@main: 'model.safetensors' is not in the hub cache"), "{err}");

    // Online, a file that is not cached must be fetched: the (unreachable) hub is tried and the error
    // says so without the token.
    let err = open("fitcheck/absent", "main", false).err().unwrap_or_default();
    assert!(err.starts_with("fitcheck/absent@main: cannot download 'model.safetensors'"), "{err}");
    assert!(!err.contains(TOKEN), "{err}");

    // A revision the cache does not know, offline: said to be unknown, not a missing weights file.
    let err = open("fitcheck/tiny-a", "nope", true).err().unwrap_or_default();
    assert!(err.starts_with("fitcheck/tiny-a@nope: unknown revision 'nope' of 'fitcheck/tiny-a' (offline"), "{err}");
    assert!(err.contains("cached branches and tags: main)"), "{err}");
    assert!(!err.contains("model.safetensors"), "{err}");
    let other_sha = "fedcba9876543210fedcba9876543210fedcba98";
    let err = open("fitcheck/tiny-a", other_sha, true).err().unwrap_or_default();
    assert!(err.starts_with(&format!("fitcheck/tiny-a@{other_sha}: unknown revision '{other_sha}'")), "{err}");

    // Online, the hub's 404 says which is missing (X-Error-Code): the revision, or only the file.
    let hub_url = fake_hub();
    std::env::set_var("HF_ENDPOINT", &hub_url);
    let err = open("fitcheck/tiny-a", "nope", false).err().unwrap_or_default();
    assert_eq!(
        err,
        "fitcheck/tiny-a@nope: unknown revision 'nope' of 'fitcheck/tiny-a' (the hub answers 404 RevisionNotFound): \
         give an existing branch, tag or commit sha"
    );
    let err = open("fitcheck/absent", "main", false).err().unwrap_or_default();
    assert!(err.starts_with("fitcheck/absent@main: the repository has no 'model.safetensors'"), "{err}");
}

/// A stand-in for the hub on a loopback port: every file is missing (404), with the
/// `X-Error-Code` the real hub sends: `RevisionNotFound` under revision `nope`, `EntryNotFound`
/// elsewhere. It serves at most 32 requests and stops after 60 seconds.
fn fake_hub() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut served = 0;
        while served < 32 && std::time::Instant::now() < deadline {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(std::time::Duration::from_millis(5));
                continue;
            };
            served += 1;
            stream.set_nonblocking(false).unwrap();
            stream.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&request).lines().next().unwrap_or_default().to_string();
            let code = if line.contains("/resolve/nope/") { "RevisionNotFound" } else { "EntryNotFound" };
            let response = format!(
                "HTTP/1.1 404 Not Found\r\nX-Error-Code: {code}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    url
}
