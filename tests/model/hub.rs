//! Loading checkpoints by hub id from a hub cache laid out as Python's `huggingface_hub` writes it
//! (`models--org--name/{blobs,refs,snapshots}`, snapshot entries symlinked into `blobs/`), under a
//! temporary `HF_HOME`, with no network. The environment is process-wide, so this file holds a
//! single test that runs every scenario in turn.

use std::path::{Path, PathBuf};

use fitcheck::embed::{Alpha, Embedder, ModelSource, ModelSpec};
use fitcheck::model::Siglip;
use sha2::{Digest, Sha256};

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
    let spec = ModelSpec {
        source: ModelSource::Hub { id: id.into(), revision: revision.into() },
        offline,
        alpha: Alpha::Drop,
    };
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

    let local =
        Siglip::open(&ModelSpec { source: ModelSource::Local(fixture.into()), offline: true, alpha: Alpha::Drop })
            .unwrap();
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
}
