"""The tiny lookbook CLIP: architecture, tokenizer, preprocessing and the Marqo fashionCLIP checkpoint layout.

The model is an open_clip `CLIP` built like `ViT-B-16` (the architecture of Marqo/marqo-fashionCLIP, fine-tuned
from ViT-B-16 laion2b), only much smaller:
- vision: open_clip `VisionTransformer` with a class token, pre and post LayerNorm, class-token pooling and a
  projection matrix; exact GELU (no `quick_gelu`, as in ViT-B-16.json);
- text: open_clip's causal text transformer, pooled at the end-of-text token (the highest id), projection
  matrix without bias;
- a CLIP byte-level BPE vocabulary learned from the caption words (`scripts/fidelity/clip_bpe.py`), so every
  caption word is one token; `<|endoftext|>` has the highest id.

Checkpoints are written as a Marqo `AutoModel` repository of fashionCLIP is (`model.safetensors` with `model.` +
open_clip names, `config.json` with `model_type: "clip"`, `open_clip_config.json`, tokenizer and preprocessor
files). Text is cleaned as open_clip's SimpleTokenizer does (ftfy, HTML unescape, white space, lower case) and
padded with zeros; images are resized on their shortest side and center-cropped, with CLIP's mean and std.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import open_clip
from open_clip.tokenizer import get_clean_fn
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fidelity"))
import clip_bpe  # noqa: E402

HUB_NAME = "fitcheck/lookbook-clip"
IMAGE_SIZE = 64
PATCH_SIZE = 16
WIDTH = 96
HEAD_WIDTH = 24  # 4 heads
LAYERS = 2
TEXT_HEADS = 4
EMBED_DIM = 64
CONTEXT = 16
MEAN = [0.48145466, 0.4578275, 0.40821073]  # OpenAI CLIP's (open_clip OPENAI_DATASET_MEAN)
STD = [0.26862954, 0.26130258, 0.27577711]


def model_cfg(vocab_size: int) -> dict:
    """The open_clip model config, in the shape of open_clip's ViT-B-16.json."""
    return {
        "embed_dim": EMBED_DIM,
        "quick_gelu": False,
        "vision_cfg": {"image_size": IMAGE_SIZE, "layers": LAYERS, "width": WIDTH, "head_width": HEAD_WIDTH,
                       "patch_size": PATCH_SIZE},
        "text_cfg": {"context_length": CONTEXT, "vocab_size": vocab_size, "width": WIDTH, "heads": TEXT_HEADS,
                     "layers": LAYERS},
    }


PREPROCESS_CFG = {"mean": MEAN, "std": STD, "interpolation": "bicubic", "resize_mode": "shortest"}


def create(vocab_size: int) -> torch.nn.Module:
    cfg = model_cfg(vocab_size)
    return open_clip.CLIP(cfg["embed_dim"], cfg["vision_cfg"], cfg["text_cfg"], quick_gelu=cfg["quick_gelu"])


def build_merges(words: list[str]) -> list[tuple[str, str]]:
    """BPE merges until every cleaned caption word is a single token."""
    clean = get_clean_fn("lower")
    counts = Counter(w for text in words for w in clean(text).split())
    return clip_bpe.learn_merges(counts, max_merges=100_000)


class TextEncoder:
    """open_clip's CLIP text pipeline: `lower` cleaning, BPE, `<|startoftext|>` ... `<|endoftext|>`, truncation
    keeping the end token, zero padding."""

    def __init__(self, tokenizer, context_length: int):
        self.tok = tokenizer
        self.ctx = context_length
        self.clean = get_clean_fn("lower")
        self.eot = tokenizer.token_to_id(clip_bpe.EOS)

    def ids(self, text: str) -> list[int]:
        ids = self.tok.encode(self.clean(text)).ids
        if len(ids) > self.ctx:
            ids = ids[: self.ctx - 1] + [self.eot]
        return ids + [0] * (self.ctx - len(ids))

    def __call__(self, texts: list[str]) -> torch.Tensor:
        return torch.tensor([self.ids(t) for t in texts], dtype=torch.long)


def preprocess(img: Image.Image, size: int = IMAGE_SIZE) -> np.ndarray:
    """`convert('RGB')`, then open_clip's eval transform: shortest side to `size` bicubic, center crop, mean/std."""
    img = img.convert("RGB")
    w, h = img.size
    if w <= h:
        nw, nh = size, int(size * h / w)
    else:
        nw, nh = int(size * w / h), size
    img = img.resize((nw, nh), Image.BICUBIC)
    left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
    img = img.crop((left, top, left + size, top + size))
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = (x - np.array(MEAN, dtype=np.float32)) / np.array(STD, dtype=np.float32)
    return x.transpose(2, 0, 1)


def save_checkpoint(model: torch.nn.Module, tokenizer, out: Path, extra_config: dict | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    vocab = tokenizer.get_vocab_size()
    sd = {f"model.{k}": v.detach().to(torch.float32).contiguous().clone() for k, v in model.state_dict().items()}
    assert sd["model.logit_scale"].dim() == 0 and "model.logit_bias" not in sd
    save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
    os.chmod(out / "model.safetensors", 0o644)
    config = {
        "architectures": ["MarqoFashionCLIP"],
        "open_clip_model_name": f"hf-hub:{HUB_NAME}",
        "model_type": "clip",
        "torch_dtype": "float32",
    }
    if extra_config:
        config.update(extra_config)
    _json(out / "config.json", config)
    _json(out / "open_clip_config.json", {"model_cfg": model_cfg(vocab), "preprocess_cfg": PREPROCESS_CFG})
    tokenizer.save(str(out / "tokenizer.json"))
    for name, content in clip_bpe.hf_tokenizer_files(CONTEXT).items():
        _json(out / name, content)
    _json(out / "preprocessor_config.json", {
        "crop_size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        "do_center_crop": True,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": MEAN,
        "image_processor_type": "CLIPImageProcessor",
        "image_std": STD,
        "resample": 3,
        "rescale_factor": 1 / 255,
        "size": {"shortest_edge": IMAGE_SIZE},
    })


def _json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
