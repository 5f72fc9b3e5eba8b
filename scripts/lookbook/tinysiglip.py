"""The tiny lookbook SigLIP: architecture, tokenizer, preprocessing and the Marqo-style checkpoint layout.

The model is an open_clip `CustomTextCLIP` built exactly like `ViT-B-16-SigLIP` (the architecture of
Marqo/marqo-fashionSigLIP), only much smaller:
- vision: a timm `VisionTransformer` without class token, MAP (attention-latent) pooling, no projection,
  registered here as the timm model `TIMM_NAME`;
- text: open_clip `TextTransformer`, no causal mask, pooled at the last position, linear projection with bias;
- a whole-word Unigram `tokenizer.json` (T5/SigLIP conventions: `</s>` = 1 is both EOS and pad, `<unk>` = 2).

Checkpoints are written in the layout of a Marqo `AutoModel` repository (`model.safetensors` with `model.` +
open_clip names, `config.json`, `open_clip_config.json`, tokenizer and preprocessor files), so that code
written for the real checkpoints loads these unchanged.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import open_clip
from open_clip.tokenizer import get_clean_fn
from safetensors.torch import load_file, save_file
from timm.models import register_model
from timm.models.vision_transformer import VisionTransformer

MODEL_NAME = "lookbook-siglip"
HUB_NAME = "fitcheck/lookbook-siglip"
IMAGE_SIZE = 64
PATCH_SIZE = 16
WIDTH = 96
HEADS = 4
LAYERS = 2
MLP_RATIO = 4.0
CONTEXT = 16
TIMM_NAME = f"vit_lookbook_patch{PATCH_SIZE}_siglip_{IMAGE_SIZE}"

PAD_ID = 1  # "</s>", as in the T5 / SigLIP sentencepiece vocabularies
UNK_ID = 2


@register_model
def vit_lookbook_patch16_siglip_64(pretrained: bool = False, **kwargs) -> VisionTransformer:
    """`vit_base_patch16_siglip_224` scaled down: 64 px, patch 16, width 96, 2 blocks, 4 heads, MAP pooling."""
    assert not pretrained, "there are no pretrained weights for the lookbook model"
    args = dict(img_size=IMAGE_SIZE, patch_size=PATCH_SIZE, embed_dim=WIDTH, depth=LAYERS, num_heads=HEADS,
                mlp_ratio=MLP_RATIO, class_token=False, global_pool="map")
    args.update({k: v for k, v in kwargs.items() if k not in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")})
    return VisionTransformer(**args)


assert vit_lookbook_patch16_siglip_64.__name__ == TIMM_NAME


def model_cfg(vocab_size: int) -> dict:
    """The open_clip model config, in the shape of open_clip's ViT-B-16-SigLIP.json."""
    return {
        "embed_dim": WIDTH,
        "init_logit_bias": -10,
        "custom_text": True,
        "vision_cfg": {
            "image_size": IMAGE_SIZE,
            "timm_model_name": TIMM_NAME,
            "timm_model_pretrained": False,
            "timm_pool": "map",
            "timm_proj": "none",
            # Not read by open_clip when timm_model_name is set; they state the trunk's shape for readers
            # that cannot look the timm model up (heads = width / head_width).
            "patch_size": PATCH_SIZE,
            "width": WIDTH,
            "layers": LAYERS,
            "head_width": WIDTH // HEADS,
            "mlp_ratio": MLP_RATIO,
        },
        "text_cfg": {
            "context_length": CONTEXT,
            "vocab_size": vocab_size,
            "hf_tokenizer_name": HUB_NAME,
            "tokenizer_kwargs": {"clean": "canonicalize"},
            "width": WIDTH,
            "heads": HEADS,
            "layers": LAYERS,
            "mlp_ratio": MLP_RATIO,
            "no_causal_mask": True,
            "proj_bias": True,
            "pool_type": "last",
            "norm_kwargs": {"eps": 1e-6},
        },
    }


PREPROCESS_CFG = {
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
    "interpolation": "bicubic",
    "resize_mode": "squash",
}


def register_config(cfg: dict) -> None:
    """Makes `cfg` known to open_clip under MODEL_NAME (open_clip only creates models it has a config for)."""
    d = tempfile.mkdtemp(prefix="lookbook-cfg-")
    with open(os.path.join(d, f"{MODEL_NAME}.json"), "w") as f:
        json.dump(cfg, f)
    open_clip.add_model_config(d)


def create(vocab_size: int) -> torch.nn.Module:
    register_config(model_cfg(vocab_size))
    model = open_clip.create_model(MODEL_NAME, pretrained=None)
    return model


# ----------------------------------------------------------------------------------------------------
# Tokenizer


def build_tokenizer(words: list[str]):
    """A whole-word Unigram tokenizer with single characters as fallback, in SigLIP's conventions."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    clean = get_clean_fn("canonicalize")
    words = sorted({w for text in words for w in clean(text).split()})
    chars = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789áéíóúüñàèìòùâêîôûç") | {c for w in words for c in w})
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [("▁" + w, -4.0) for w in words]
    vocab += [("▁", -6.0)]
    vocab += [(c, -8.0) for c in chars]
    vocab += [("▁" + c, -8.0) for c in chars if "▁" + c not in {v for v, _ in vocab}]
    tok = Tokenizer(Unigram(vocab, unk_id=UNK_ID, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", PAD_ID)])
    tok.add_special_tokens([AddedToken("<pad>", special=True), AddedToken("</s>", special=True),
                            AddedToken("<unk>", special=True)])
    assert tok.token_to_id("</s>") == PAD_ID and tok.token_to_id("<unk>") == UNK_ID
    return tok


class TextEncoder:
    """open_clip's SigLIP text pipeline: canonicalize, tokenize, truncate keeping `</s>`, pad with id 1."""

    def __init__(self, tokenizer, context_length: int):
        self.tok = tokenizer
        self.ctx = context_length
        self.clean = get_clean_fn("canonicalize")

    def ids(self, text: str) -> list[int]:
        ids = self.tok.encode(self.clean(text)).ids
        if len(ids) > self.ctx:
            ids = ids[: self.ctx - 1] + [PAD_ID]
        return ids + [PAD_ID] * (self.ctx - len(ids))

    def __call__(self, texts: list[str]) -> torch.Tensor:
        return torch.tensor([self.ids(t) for t in texts], dtype=torch.long)


# ----------------------------------------------------------------------------------------------------
# Images


def preprocess(img: Image.Image, size: int = IMAGE_SIZE) -> np.ndarray:
    """The users' pipeline: convert('RGB') (alpha dropped), squash-resize bicubic, x / 127.5 - 1, CHW."""
    img = img.convert("RGB").resize((size, size), Image.BICUBIC)
    x = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    return x.transpose(2, 0, 1)


# ----------------------------------------------------------------------------------------------------
# Checkpoint layout


def save_checkpoint(model: torch.nn.Module, tokenizer, out: Path, extra_config: dict | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    vocab = tokenizer.get_vocab_size()
    sd = {f"model.{k}": v.detach().to(torch.float32).contiguous().clone() for k, v in model.state_dict().items()}
    assert sd["model.logit_scale"].dim() == 0 and sd["model.logit_bias"].dim() == 0
    save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
    os.chmod(out / "model.safetensors", 0o644)
    config = {
        "architectures": ["MarqoFashionSigLIP"],
        "open_clip_model_name": f"hf-hub:{HUB_NAME}",
        "model_type": "siglip",
        "torch_dtype": "float32",
        "transformers_version": _version("transformers"),
    }
    if extra_config:
        config.update(extra_config)
    _json(out / "config.json", config)
    _json(out / "open_clip_config.json", {"model_cfg": model_cfg(vocab), "preprocess_cfg": PREPROCESS_CFG})
    tokenizer.save(str(out / "tokenizer.json"))
    _json(out / "special_tokens_map.json", {
        "eos_token": {"content": "</s>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
        "pad_token": {"content": "</s>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
        "unk_token": {"content": "<unk>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
    })
    _json(out / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": "</s>",
        "pad_token": "</s>",
        "unk_token": "<unk>",
        "model_max_length": CONTEXT,
        "padding_side": "right",
        "do_lower_case": True,
        "added_tokens_decoder": {
            str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                     "special": True}
            for i, t in enumerate(["<pad>", "</s>", "<unk>"])
        },
    })
    _json(out / "preprocessor_config.json", {
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_processor_type": "SiglipImageProcessor",
        "image_std": [0.5, 0.5, 0.5],
        "processor_class": "SiglipProcessor",
        "resample": 3,
        "rescale_factor": 1 / 255,
        "size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE},
    })


def load_checkpoint(path: Path):
    """Loads a checkpoint written by `save_checkpoint` through its own config files: (model, TextEncoder, size)."""
    from tokenizers import Tokenizer

    cfg = json.loads((path / "open_clip_config.json").read_text())
    mc = cfg["model_cfg"]
    v = mc["vision_cfg"]
    assert v["timm_model_name"] == TIMM_NAME, f"unknown vision trunk {v['timm_model_name']!r}"
    assert (v["image_size"], v["patch_size"], v["width"], v["layers"]) == (IMAGE_SIZE, PATCH_SIZE, WIDTH, LAYERS)
    register_config(mc)
    model = open_clip.create_model(MODEL_NAME, pretrained=None)
    sd = load_file(str(path / "model.safetensors"))
    assert all(k.startswith("model.") for k in sd)
    missing, unexpected = model.load_state_dict({k[len("model."):]: t for k, t in sd.items()}, strict=True)
    model.eval()
    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    return model, TextEncoder(tok, mc["text_cfg"]["context_length"]), v["image_size"]


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
