"""Pair mode in Python: the team's checkpoint table, computed with open_clip and transformers.

    .venv/bin/pip install -r scripts/pairs/requirements.txt
    .venv/bin/python scripts/pairs/make_fixture.py      # tests/fixtures/pairs/tiny/ (first)
    .venv/bin/python scripts/pairs/evaluate.py          # writes tests/fixtures/pairs/reference.json

A reference for fitcheck's pair mode (src/pairs.rs), computed independently of it:

- pairs files read with Python's csv module; the text is the description, plus ". Etiquetas: " and the
  comma-separated tags trimmed and joined with ", " when there are tags (a period first unless the
  description ends with one);
- texts cleaned with open_clip's `canonicalize` and tokenised by transformers' fast tokenizer on the
  checkpoint's tokenizer.json, in batches of 16 in file order, `padding=True` (the batch's longest) or
  `padding="max_length"` (the full context), truncated at the context; the open_clip model's encode_text;
- images: PIL, convert('RGB'), squash-resize bicubic to the model's size, x / 127.5 - 1 (the checkpoints'
  mean and std are 0.5); encode_image;
- identical model inputs share one embedding (same text padded to the same length, same image bytes);
  similarities in float64; ranks pessimistic (the own item after every other item with an equal score);
- recall@k = share of queries whose own item is in the top k, MRR = mean 1 / rank, both directions;
- InfoNCE: per batch, (cross_entropy(I Tᵀ / τ) + cross_entropy(T Iᵀ / τ)) / 2 with the diagonal as labels,
  τ = 0.05; sigmoid loss as open_clip's SigLipLoss: -sum(logsigmoid(z * (s I Tᵀ + b))) / batch size with
  s = exp(logit_scale); both averaged over batches.

It also writes reference embeddings of texts padded to their batch's longest for the fidelity checkpoints
(tests/fixtures/siglip/tiny-{a,b}/{marqo,open_clip} through open_clip, .../hf through transformers'
SiglipModel), the proof that candle's text tower reads a sequence shorter than the context as they do.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import open_clip
from open_clip.tokenizer import get_clean_fn
from safetensors.torch import load_file
from timm.models import register_model
from timm.models.vision_transformer import VisionTransformer
from transformers import PreTrainedTokenizerFast, SiglipModel

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "lookbook"))
import tinysiglip as T  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "pairs" / "reference.json"
BATCH = 16
TEMPERATURE = 0.05
KS = (1, 5, 10)
RUNS = [
    ("lookbook/checkpoints/checkpoint-a", "lookbook/pairs/pairs.csv"),
    ("lookbook/checkpoints/checkpoint-b", "lookbook/pairs/pairs.csv"),
    ("tests/fixtures/siglip/tiny-b/marqo", "tests/fixtures/pairs/tiny/pairs.csv"),
    ("tests/fixtures/siglip/tiny-a/marqo", "tests/fixtures/pairs/tiny/pairs.csv"),
]
LONGEST_DIRS = [f"tests/fixtures/siglip/{c}/{l}" for c in ("tiny-a", "tiny-b") for l in ("marqo", "open_clip", "hf")]
LONGEST_TEXTS = [
    "vestido rojo",
    "Camisa de LINO blanca, talla M",
    "abrigo",
    "vaqueros azules",
    "falda midi plisada. Etiquetas: verano",
    "chaqueta de cuero negra",
]


def register_timm(v: dict) -> None:
    """Registers the checkpoint's timm trunk (a SigLIP ViT: no class token, MAP pooling) under its name."""
    name = v["timm_model_name"]
    import timm

    if name in timm.list_models():
        return

    def make(pretrained=False, **kwargs):
        assert not pretrained
        args = dict(img_size=v["image_size"], patch_size=v["patch_size"], embed_dim=v["width"], depth=v["layers"],
                    num_heads=v["width"] // v["head_width"], mlp_ratio=v["mlp_ratio"], class_token=False,
                    global_pool="map")
        args.update({k: a for k, a in kwargs.items() if not k.startswith(("pretrained_cfg", "cache_dir"))})
        return VisionTransformer(**args)

    make.__name__ = name
    make.__module__ = __name__
    register_model(make)


def load_open_clip(d: Path):
    """An open_clip model from a Marqo or raw open_clip checkpoint directory: (model, context, image size)."""
    if (d / "model.safetensors").exists() and "lookbook" in str(d):
        model, enc, size = T.load_checkpoint(d)  # as scripts/lookbook/evaluate.py loads them
        return model, enc.ctx, size
    mc = json.loads((d / "open_clip_config.json").read_text())["model_cfg"]
    register_timm(mc["vision_cfg"])
    tmp = tempfile.mkdtemp(prefix="fitcheck-pairs-")
    name = "fitcheck-pairs-" + hashlib.sha256(json.dumps(mc, sort_keys=True).encode()).hexdigest()[:12]
    Path(tmp, f"{name}.json").write_text(json.dumps(mc))
    open_clip.add_model_config(tmp)
    model = open_clip.create_model(name, pretrained=None)
    if (d / "model.safetensors").exists():
        sd = {k[len("model."):]: t for k, t in load_file(str(d / "model.safetensors")).items()}
    else:
        sd = load_file(str(d / "open_clip_model.safetensors"))
    model.load_state_dict(sd, strict=True)
    return model.eval(), mc["text_cfg"]["context_length"], mc["vision_cfg"]["image_size"]


def fast_tokenizer(d: Path, ctx: int) -> PreTrainedTokenizerFast:
    tok = PreTrainedTokenizerFast(tokenizer_file=str(d / "tokenizer.json"), pad_token="</s>", eos_token="</s>",
                                  unk_token="<unk>", model_max_length=ctx, padding_side="right")
    assert tok.pad_token_id == 1
    return tok


def compose(description: str, tags: str) -> str:
    words = [t.strip() for t in tags.split(",") if t.strip()]
    text = description.rstrip()
    if words:
        if not text.endswith("."):
            text += "."
        text += " Etiquetas: " + ", ".join(words)
    return text


def read_pairs(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [dict(image=path.parent / r["image"].strip(), text=compose(r["description"], r.get("tags") or ""),
                 split=r["split"].strip()) for r in rows]


def share(vectors: torch.Tensor, keys: list) -> torch.Tensor:
    """One embedding per distinct key: every copy takes its first occurrence's vector."""
    first: dict = {}
    out = vectors.clone()
    for i, k in enumerate(keys):
        out[i] = vectors[first.setdefault(k, i)]
    return out


def ranks(sims: np.ndarray) -> np.ndarray:
    """Rank of the diagonal entry of each row among the row's entries, ties counted against it."""
    own = np.diag(sims)[:, None]
    return (sims >= own).sum(1)  # the own entry counts itself once: 1 + others at or above it


def retrieval(r: np.ndarray) -> dict:
    out = {f"recall_at_{k}": int((r <= k).sum()) / len(r) for k in KS}  # a count over n, exactly
    out["mrr"] = float((1.0 / r).mean())
    return out


@torch.no_grad()
def mode(model, tok, ctx, texts, img, padding, scale, bias) -> dict:
    clean = get_clean_fn("canonicalize")
    vecs, keys = [], []
    for s in range(0, len(texts), BATCH):
        chunk = [clean(t) for t in texts[s:s + BATCH]]
        pad = True if padding == "batch-longest" else "max_length"
        ids = tok(chunk, padding=pad, truncation=True, max_length=ctx, return_tensors="pt").input_ids
        vecs.append(model.encode_text(ids, normalize=True))
        keys += [(t, ids.shape[1]) for t in texts[s:s + BATCH]]
    txt = share(torch.cat(vecs), keys).double().numpy()
    sims = (img[:, None, :] * txt[None, :, :]).sum(-1)  # elementwise, so equal rows give equal sums
    i2t, t2i = retrieval(ranks(sims)), retrieval(ranks(sims.T))
    nce, sig = [], []
    for s in range(0, len(texts), BATCH):
        block = torch.from_numpy(sims[s:s + BATCH, s:s + BATCH])
        labels = torch.arange(block.shape[0])
        nce.append(float((F.cross_entropy(block / TEMPERATURE, labels)
                          + F.cross_entropy(block.T / TEMPERATURE, labels)) / 2))
        z = 2 * torch.eye(block.shape[0], dtype=torch.float64) - 1
        sig.append(float(-F.logsigmoid(z * (scale * block + bias)).sum() / block.shape[0]))
    return {"padding": padding, "image_to_text": i2t, "precision_at_5_seed": i2t["recall_at_5"],
            "text_to_image": t2i, "info_nce": float(np.mean(nce)), "sigmoid": float(np.mean(sig))}


@torch.no_grad()
def evaluate(model_dir: str, pairs_file: str) -> dict:
    d = ROOT / model_dir
    model, ctx, size = load_open_clip(d)
    tok = fast_tokenizer(d, ctx)
    scale, bias = float(model.logit_scale.exp()), float(model.logit_bias)
    pairs = read_pairs(ROOT / pairs_file)
    splits = []
    for split in dict.fromkeys(p["split"] for p in pairs):
        rows = [p for p in pairs if p["split"] == split]
        texts = [p["text"] for p in rows]
        x = torch.from_numpy(np.stack([T.preprocess(Image.open(p["image"]), size) for p in rows]))
        img = share(model.encode_image(x, normalize=True), [p["image"].read_bytes() for p in rows]).double().numpy()
        counts = [len(tok(get_clean_fn("canonicalize")(t)).input_ids) for t in texts]
        splits.append({
            "split": split, "n": len(rows), "duplicate_texts": len(texts) - len(set(texts)),
            "truncated_texts": sum(c > ctx for c in counts),
            "batch_longest": mode(model, tok, ctx, texts, img, "batch-longest", scale, bias),
            "full_context": mode(model, tok, ctx, texts, img, "full-context", scale, bias),
        })
    return {"checkpoint": model_dir, "file": pairs_file, "batch": BATCH, "temperature": TEMPERATURE,
            "context_length": ctx, "logit_scale": scale, "logit_bias": bias, "splits": splits}


@torch.no_grad()
def padded_to_longest(model_dir: str) -> dict:
    """Reference ids and embeddings of LONGEST_TEXTS as one batch padded to its longest text."""
    d = ROOT / model_dir
    if model_dir.endswith("/hf"):
        import re
        import string

        model = SiglipModel.from_pretrained(str(d)).eval()
        ctx = model.config.text_config.max_position_embeddings

        def clean(t: str) -> str:  # transformers' SiglipTokenizer cleaning (lower case, no punctuation)
            t = t.lower().translate(str.maketrans("", "", string.punctuation))
            return re.sub(r"\s+", " ", t).strip()

        def encode(ids):
            out = model.get_text_features(input_ids=ids)
            return F.normalize(out.pooler_output if hasattr(out, "pooler_output") else out, dim=-1)
    else:
        model, ctx, _ = load_open_clip(d)
        clean = get_clean_fn("canonicalize")

        def encode(ids):
            return model.encode_text(ids, normalize=True)

    tok = fast_tokenizer(d, ctx)
    ids = tok([clean(t) for t in LONGEST_TEXTS], padding=True, truncation=True, max_length=ctx,
              return_tensors="pt").input_ids
    assert ids.shape[1] < ctx, f"{model_dir}: the batch should be shorter than the context"
    emb = encode(ids)
    return {"checkpoint": model_dir, "context_length": ctx, "texts": LONGEST_TEXTS, "ids": ids.tolist(),
            "embeddings": emb.tolist()}


def main() -> None:
    torch.set_num_threads(1)
    from importlib.metadata import version

    ref = {
        "generated_by": "scripts/pairs/evaluate.py",
        "versions": {p: version(p) for p in ("torch", "open_clip_torch", "transformers", "tokenizers", "numpy")},
        "tie_rule": "pessimistic: the own item is ranked after every other item with an equal score",
        "padded_to_longest": [padded_to_longest(d) for d in LONGEST_DIRS],
        "pairs": [evaluate(m, f) for m, f in RUNS],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(ref, indent=1, ensure_ascii=False) + "\n")
    for r in ref["pairs"]:
        for s in r["splits"]:
            for m in ("batch_longest", "full_context"):
                x = s[m]
                print(f"{r['checkpoint']:<40} {s['split']:<5} {m:<13} n={s['n']} dup={s['duplicate_texts']} "
                      f"cut={s['truncated_texts']} loss={x['info_nce']:.4f} sig={x['sigmoid']:.4f} "
                      f"i2t R@1={x['image_to_text']['recall_at_1']:.3f} R@5={x['image_to_text']['recall_at_5']:.3f} "
                      f"mrr={x['image_to_text']['mrr']:.3f} t2i R@1={x['text_to_image']['recall_at_1']:.3f}")
    for p in ref["padded_to_longest"]:
        print(f"{p['checkpoint']}: padded to {len(p['ids'][0])} of {p['context_length']}")


if __name__ == "__main__":
    main()
