#!/usr/bin/env python3
"""Generate the SigLIP fidelity fixtures under tests/fixtures/siglip/.

Run from the repository root:

    python scripts/fidelity/generate.py                  # everything
    python scripts/fidelity/generate.py --pipeline-only  # only tests/fixtures/siglip/pipeline/
    python scripts/fidelity/generate.py --clip-only      # only tests/fixtures/clip/ (see clip_fixtures.py)

The script rewrites tests/fixtures/siglip/ completely, except the hand-written
README.md. It builds a small sentencepiece tokenizer, two tiny SigLIP configurations with random weights,
writes each configuration in three checkpoint layouts (Marqo AutoModel push,
raw open_clip, transformers SiglipModel), a set of test images and queries, and
the reference outputs that the Python libraries compute for them. The Rust
backend must reproduce those outputs. See tests/fixtures/siglip/README.md.

Everything is seeded; the weights, ids, pixels and embeddings come out the same
on every run with the versions pinned in scripts/requirements.txt (embeddings
may move in the last bits on a different CPU or torch build).
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import struct
import sys
import tempfile
import types
import zlib
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import numpy as np
import PIL
import sentencepiece as spm
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import ftfy
import open_clip
import timm
import transformers
from open_clip.tokenizer import _clean_canonicalize, basic_clean
from timm.models import register_model
from timm.models.vision_transformer import VisionTransformer
from tokenizers import Tokenizer
from transformers import SiglipConfig, SiglipModel, SiglipTokenizer
from transformers.convert_slow_tokenizer import T5Converter

torch.set_num_threads(1)
transformers.logging.set_verbosity_error()

ROOT = Path(__file__).resolve().parents[2]
_TMP = tempfile.TemporaryDirectory(prefix="fitcheck-fidelity-")
OUT = ROOT / "tests" / "fixtures" / "siglip"

PAD_ID = EOS_ID = 1
UNK_ID = 2

# --------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------

# Sizes are kept small so that the whole fixture directory stays at a few MB. The two
# configurations differ in every dimension a loader could get wrong: image size, patch size
# (and so the number of positions: 16 vs 9), width, heads, layers, MLP ratio, context
# length and GELU flavour of the hf layout.
CONFIGS = {
    "tiny-a": dict(
        image_size=32, patch_size=8, width=32, layers=2, heads=4, mlp_ratio=4.0,
        context_length=16, hf_act="gelu_pytorch_tanh", seed=1001,
    ),
    "tiny-b": dict(
        image_size=48, patch_size=16, width=48, layers=3, heads=6, mlp_ratio=2.0,
        context_length=24, hf_act="gelu", seed=2002,
    ),
}


def timm_name(name: str, cfg: dict) -> str:
    # Shaped like timm's own names (vit_base_patch16_siglip_224) so that patch and image size
    # can be read from it the same way.
    return f"vit_fitcheck_{name.split('-')[1]}_patch{cfg['patch_size']}_siglip_{cfg['image_size']}"


def register_timm_models() -> None:
    """Register the tiny towers with timm: open_clip only passes a timm model *name*."""
    for name, cfg in CONFIGS.items():
        def make(pretrained=False, _cfg=cfg, **kwargs):
            assert not pretrained
            args = dict(
                img_size=_cfg["image_size"], patch_size=_cfg["patch_size"], embed_dim=_cfg["width"],
                depth=_cfg["layers"], num_heads=_cfg["heads"], mlp_ratio=_cfg["mlp_ratio"],
                class_token=False, global_pool="map",
            )
            # timm's factory also passes pretrained_cfg / overlay / cache_dir, which only matter
            # for downloads
            args.update({k: v for k, v in kwargs.items() if not k.startswith(("pretrained_cfg", "cache_dir"))})
            return VisionTransformer(**args)

        make.__name__ = timm_name(name, cfg)
        make.__module__ = __name__
        register_model(make)


def open_clip_model_cfg(name: str, cfg: dict, vocab_size: int) -> dict:
    w = cfg["width"]
    return {
        "embed_dim": w,
        "init_logit_bias": -10,
        "custom_text": True,
        "vision_cfg": {
            "image_size": cfg["image_size"],
            "timm_model_name": timm_name(name, cfg),
            "timm_model_pretrained": False,
            "timm_pool": "map",
            "timm_proj": "none",
            # Ignored by open_clip when timm_model_name is set (the timm registry decides), but
            # true for these towers; real Marqo configs lack them (heads = width / head_width,
            # and head_width defaults to 64, which gives 12 for ViT-B/16).
            "width": w,
            "layers": cfg["layers"],
            "head_width": w // cfg["heads"],
            "patch_size": cfg["patch_size"],
            "mlp_ratio": cfg["mlp_ratio"],
        },
        "text_cfg": {
            "context_length": cfg["context_length"],
            "vocab_size": vocab_size,
            "hf_tokenizer_name": f"fitcheck-fixtures/siglip-{name}",
            "tokenizer_kwargs": {"clean": "canonicalize"},
            "width": w,
            "heads": cfg["heads"],
            "layers": cfg["layers"],
            "mlp_ratio": cfg["mlp_ratio"],
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

# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------

PRENDAS = """vestido vestidos falda faldas camisa camisas camiseta camisetas pantalón pantalones vaqueros
jean jeans chaqueta chaquetas abrigo abrigos jersey jerséis sudadera sudaderas blusa blusas top tops shorts
bermudas mono monos chaleco gabardina cárdigan zapatos zapatillas botas botines sandalias bolso bolsos
cinturón gorra sombrero bufanda pañuelo calcetines bañador bikini pijama traje corbata americana blazer polo
leggings mallas tacones mocasines alpargatas parka plumífero cazadora body kimono túnica poncho guantes medias
sujetador mochila cartera pendientes collar pulsera anillo gafas""".split()
COLORES = """rojo roja rojos azul azules verde verdes negro negra negros blanco blanca blancos amarillo amarilla rosa
morado morada gris marrón beige naranja burdeos caqui turquesa dorado dorada plateado crema añil fucsia lila
granate coral mostaza camel nude marino celeste""".split()
MATERIALES = """algodón lino seda lana cuero piel ante terciopelo punto denim poliéster satén encaje pana franela
tweed viscosa cachemir nailon licra""".split()
ADJETIVOS = """largo larga corto corta ajustado ajustada holgado holgada oversize estampado estampada floral rayas
cuadros lunares liso lisa bordado plisado plisada acolchado impermeable vintage elegante casual deportivo
deportiva básico básica cómodo cómoda pequeño pequeña grande ligero ligera cálido cálida fresco transparente
brillante mate acampanado recto cruzado midi mini maxi wide leg slim fit skinny crop""".split()
OTROS = """manga mangas cuello botones cremallera capucha tirantes escote cintura alta alto baja bajo talla niño niña
niños niñas mujer hombre bebé verano invierno otoño primavera fiesta boda oficina playa noche pingüino cigüeña
vergüenza año diseño señora señor españa corazón canción también más qué cómo dónde para con sin de del la el
los las un una y o en por muy nuevo nueva rebajas oferta regalo""".split()
ENGLISH = "t-shirt sneakers hoodie denim jacket dress shirt red blue black white sale new".split()
CHARS = ("áéíóúñüÁÉÍÓÚÑÜ abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 "
         "àèìòùâêîôûçäëïö ¿¡")


def tokenizer_corpus() -> list[str]:
    rng = random.Random(7)
    words = PRENDAS + COLORES + MATERIALES + ADJETIVOS + OTROS + ENGLISH
    lines = [w for w in words for _ in range(8)]
    for _ in range(6000):
        n = rng.randint(2, 6)
        lines.append(" ".join([rng.choice(PRENDAS)] + [rng.choice(words) for _ in range(n - 1)]))
    lines.append(CHARS)
    return lines


def train_sentencepiece() -> bytes:
    """A T5/SigLIP-style unigram model: <pad>=0, </s>=1, <unk>=2, no <s>, nmt_nfkc normaliser."""
    spm.set_random_generator_seed(0)
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(tokenizer_corpus()),
        model_writer=buf,
        vocab_size=1000,
        hard_vocab_limit=False,  # the corpus supports fewer pieces; take what it gives
        model_type="unigram",
        character_coverage=1.0,
        byte_fallback=False,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        normalization_rule_name="nmt_nfkc",
        num_threads=1,
        minloglevel=2,
    )
    return buf.getvalue()


def tokenizer_json_from_spiece(spiece_path: Path) -> Tokenizer:
    """Convert spiece.model the way transformers converts a T5 sentencepiece model.

    This is T5Converter, the converter behind the T5TokenizerFast files that open_clip's
    SigLIP tokenizers (and Marqo's repo) ship: Precompiled(nmt_nfkc) + Strip(right) +
    Replace(' {2,}', '▁') normaliser, Metaspace(prepend 'always') pre-tokenizer, Unigram
    model, TemplateProcessing '$A </s>'.
    """
    shim = types.SimpleNamespace(
        vocab_file=str(spiece_path), _extra_ids=0, convert_tokens_to_ids=lambda t: EOS_ID,
    )
    return T5Converter(shim).converted()


def tokenizer_files(ctx: int, kind: str) -> dict[str, dict]:
    """special_tokens_map.json and tokenizer_config.json contents, shaped like the real repos."""
    special = {"eos_token": "</s>", "pad_token": "</s>", "unk_token": "<unk>"}
    added = {
        str(i): {"content": tok, "lstrip": False, "normalized": False, "rstrip": False,
                 "single_word": False, "special": True}
        for i, tok in enumerate(["<pad>", "</s>", "<unk>"])
    }
    if kind == "hf":
        # google/siglip-*: slow SiglipTokenizer from spiece.model
        config = {
            "added_tokens_decoder": added,
            "additional_special_tokens": [],
            "clean_up_tokenization_spaces": True,
            "do_lower_case": True,
            "eos_token": "</s>",
            "model_input_names": ["input_ids"],
            "model_max_length": ctx,
            "pad_token": "</s>",
            "processor_class": "SiglipProcessor",
            "sp_model_kwargs": {},
            "tokenizer_class": "SiglipTokenizer",
            "unk_token": "<unk>",
        }
    else:
        # timm/ViT-B-16-SigLIP and Marqo: T5TokenizerFast with pad = eos = </s>
        config = {
            "added_tokens_decoder": added,
            "additional_special_tokens": [],
            "clean_up_tokenization_spaces": True,
            "eos_token": "</s>",
            "extra_ids": 0,
            "model_max_length": ctx,
            "pad_token": "</s>",
            "tokenizer_class": "T5Tokenizer",
            "unk_token": "<unk>",
        }
    return {"special_tokens_map.json": special, "tokenizer_config.json": config}


def hf_siglip_clean(text: str) -> str:
    """What transformers' SiglipTokenizer does to a text before sentencepiece, as a plain string
    function (tokenization_siglip.py canonicalize_text with do_lower_case=True): lower-case,
    delete ASCII punctuation (so '_' is deleted, not turned into a space), collapse every run of
    whitespace (Python's \\s) to one space, strip. No ftfy, no HTML unescaping."""
    import re
    import string

    text = text.lower()
    text = text.translate(str.maketrans("", "", string.punctuation))
    text = re.sub(r"\s+", " ", text)
    return text.strip()


def encode_fixed(tok: Tokenizer, texts: list[str], ctx: int) -> list[list[int]]:
    """What the Rust side is told to do: tokenizer.json with truncation to ctx (the crate keeps
    room for the appended </s>) and fixed padding to ctx with </s> (id 1)."""
    t = Tokenizer.from_str(tok.to_str())
    t.enable_truncation(max_length=ctx)
    t.enable_padding(length=ctx, pad_id=PAD_ID, pad_token="</s>")
    return [e.ids for e in t.encode_batch(texts)]


# --------------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------------

LONG_1 = ("vestido largo de fiesta en color burdeos con escote en pico, manga larga de encaje, "
          "cintura ajustada, falda plisada con abertura lateral, forro de seda natural y cremallera "
          "invisible en la espalda; ideal para bodas de noche en otoño o invierno, talla 38 o 40")
LONG_2 = " ".join(["camiseta básica de algodón orgánico blanca"] * 12)
LONG_3 = ("zapatillas deportivas blancas con suela de goma, cordones reciclados, plantilla acolchada "
          "extraíble, refuerzo en el talón, detalles reflectantes para correr de noche y caja "
          "original; disponibles en tallas 36, 37, 38, 39, 40, 41, 42, 43, 44 y 45 — ¡envío gratis!")

QUERIES: list[str] = [
    # plain Spanish fashion queries
    "vestido rojo",
    "vestido rojo largo",
    "falda midi plisada",
    "camisa de lino blanca",
    "pantalones vaqueros azules",
    "chaqueta de cuero negra",
    "abrigo de lana gris",
    "zapatillas deportivas blancas",
    "botas de piel marrón",
    "bolso pequeño de mano",
    "jersey de punto beige",
    "sudadera con capucha",
    "bañador de rayas",
    "bikini estampado floral",
    "traje de chaqueta para mujer",
    "camiseta básica negra",
    "blusa de seda con lunares",
    "pantalón de pana ancho",
    "cazadora vaquera oversize",
    "vestido de fiesta para boda",
    "sandalias de tacón doradas",
    "gafas de sol",
    "plumífero acolchado impermeable",
    "cárdigan de cachemir",
    "mono corto de verano",
    "pijama de franela para niña",
    "ropa de bebé",
    "vestidos",
    "camisetas de algodón",
    "zapatos",
    # accents, ñ, ü, ¿¡ and upper case
    "Vestido ROJO",
    "CAMISETA BLANCA DE ALGODÓN",
    "Pantalón Vaquero Azul",
    "ÑANDÚ",
    "niño",
    "NIÑA",
    "pingüino",
    "CIGÜEÑA",
    "Vergüenza",
    "¿Tienes vestidos de fiesta?",
    "¡Rebajas en abrigos!",
    "¿qué me pongo para una boda?",
    "túnica de playa añil",
    "Camión de juguete",
    "corazón rosa",
    "àèìòù âêîôû çäëïö",
    # ASCII punctuation
    "vestido, rojo.",
    "t-shirt",
    "camiseta (talla M)",
    "50% descuento!!!",
    "pantalón 'slim fit'",
    'vestido "largo"',
    "falda/vestido",
    "top: negro; talla: S",
    "camisa #azul @tienda",
    "precio: 29,99€ + envío",
    "zapatos [talla 38] {cuero}",
    "a+b=c ~ ^ ` | \\ <>",
    "....",
    "--",
    "#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    # underscores
    "jean_wide_leg",
    "vestido_rojo_largo",
    "__init__",
    "falda _ midi",
    "camisa__blanca",
    # emoji
    "vestido 👗 rojo",
    "👗👠👜",
    "👍",
    "camiseta ❤️ corazón",
    "bandera 🇪🇸 españa",
    "mujer 👩🏽‍🦱 pelo rizado",
    # HTML entities
    "camisa &amp; pantalón",
    "vestido &quot;rojo&quot;",
    "ni&#241;a",
    "ni&ntilde;a con abrigo",
    "camisa &amp;amp; corbata",
    "&lt;b&gt;negrita&lt;/b&gt;",
    "&#x1F457; vestido",
    "&nbsp;espacio&nbsp;duro",
    "<b>vestido</b> negro",
    "Tom &amp Jerry",
    # curly quotes and typography
    "vestido “largo”",
    "pantalón ‘slim’",
    "it’s a dress",
    "«camisa» — blanca…",
    "falda – midi",
    # ligatures, full width, compatibility forms
    "ﬁnal de temporada",
    "ﬂores",
    "ＡＢＣ",
    "ｖｅｓｔｉｄｏ　ｒｏｊｏ",
    "talla Ⅻ",
    "x² café ½",
    "ℌ ℍ ℎ",
    "a´b ¨c",
    # mojibake and odd code points (ftfy repairs some of these)
    "niÃ±a con vestido",
    "cafÃ© con leche",
    "vestido\u00a0rojo",
    "zapato\u200bnegro",
    "e\u0301 combinada",
    "ﬀ ﬃ",
    "\u00adcamisa",
    # whitespace
    "vestido\trojo",
    "vestido\nrojo",
    "  vestido   rojo  ",
    "\t\n vestido \r\n",
    "vestido\u3000rojo",
    "vestido\x0brojo",
    "vestido\x1crojo",
    "vestido\u2028rojo",
    "",
    " ",
    "   \t\n  ",
    # long texts (well past both context lengths)
    LONG_1,
    LONG_2,
    LONG_3,
    " ".join(["vestido"] * 40),
    "a " * 60,
]

# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def png_rgb16(path: Path, arr: np.ndarray) -> None:
    """Write a 16-bit RGB PNG by hand (PIL cannot write 16-bit colour)."""
    h, w, c = arr.shape
    assert c == 3 and arr.dtype == np.uint16
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def make_images(out: Path) -> list[dict]:
    import skimage.data as data

    out.mkdir(parents=True)

    def photo(name: str, size: tuple[int, int]) -> Image.Image:
        return Image.fromarray(getattr(data, name)()).resize(size, Image.Resampling.LANCZOS)

    made = []

    def add(fname: str, what: str) -> None:
        with Image.open(out / fname) as im:
            made.append({"file": fname, "what": what, "pil_mode": im.mode, "size": list(im.size)})

    photo("astronaut", (160, 160)).save(out / "rgb.png", optimize=True)
    add("rgb.png", "8-bit RGB PNG, square (astronaut)")

    photo("coffee", (240, 160)).save(out / "photo.jpg", quality=90)
    add("photo.jpg", "baseline JPEG, 4:2:0, non-square landscape (coffee)")

    photo("chelsea", (200, 133)).save(out / "lossless.webp", lossless=True)
    add("lossless.webp", "lossless WebP, non-square (chelsea)")

    photo("rocket", (128, 192)).save(out / "lossy.webp", quality=80)
    add("lossy.webp", "lossy WebP, portrait (rocket)")

    # Cut-out like rembg output, except the RGB under transparent pixels is kept (not black), so
    # a decoder that composites or premultiplies gives different pixels from PIL convert('RGB').
    cut = np.asarray(photo("chelsea", (150, 100))).copy()
    yy, xx = np.mgrid[0:100, 0:150]
    r = np.sqrt(((xx - 75) / 60.0) ** 2 + ((yy - 50) / 40.0) ** 2)
    alpha = np.clip((1.15 - r) / 0.15 * 255, 0, 255).astype(np.uint8)  # 0 outside, ramp, 255 inside
    Image.fromarray(np.dstack([cut, alpha]), "RGBA").save(out / "rgba_cutout.png")
    add("rgba_cutout.png", "RGBA PNG: opaque ellipse, soft edge, fully transparent corners over real colours")

    photo("astronaut", (120, 120)).quantize(colors=32, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
                                            ).save(out / "palette.png")
    add("palette.png", "palette (P mode) PNG, 32 colours")

    pal = photo("coffee", (90, 60)).quantize(colors=16, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    pal.save(out / "palette_trns.png", transparency=0)
    add("palette_trns.png", "palette PNG with a tRNS chunk (index 0 transparent)")

    cam = Image.fromarray(data.camera()).resize((128, 128), Image.Resampling.LANCZOS)
    cam.save(out / "gray.png")
    add("gray.png", "8-bit grayscale (L) PNG")

    la = np.dstack([np.asarray(cam)[::2, ::2], np.tile(np.linspace(0, 255, 64).astype(np.uint8), (64, 1))])
    Image.fromarray(la, "LA").save(out / "gray_alpha.png")
    add("gray_alpha.png", "grayscale + alpha (LA) PNG, alpha ramps 0..255 left to right")

    cam16 = np.asarray(cam).astype(np.uint16) * 257
    Image.fromarray(cam16[::2, ::2]).save(out / "gray16.png")
    add("gray16.png", "16-bit grayscale PNG, full range (PIL clips it to 255 on convert)")

    low = (np.asarray(cam).astype(np.uint16) * 2)[::2, ::2]
    Image.fromarray(low).save(out / "gray16_low.png")
    add("gray16_low.png", "16-bit grayscale PNG, values 0..510 (PIL clips at 255, does not scale)")

    rgb16 = np.asarray(photo("astronaut", (64, 64))).astype(np.uint16) * 257
    rgb16 = rgb16 + np.arange(64, dtype=np.uint16)[None, :, None] * 3  # low byte not just a copy
    png_rgb16(out / "rgb16.png", np.minimum(rgb16, 65535).astype(np.uint16))
    add("rgb16.png", "16-bit RGB PNG (written by hand; low bytes differ from high bytes)")

    photo("chelsea", (20, 12)).save(out / "tiny.png")
    add("tiny.png", "20x12 RGB PNG, smaller than both model sizes (upscaled)")

    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display; PIL (and so the reference) ignores it
    photo("rocket", (96, 64)).save(out / "exif_rotated.jpg", quality=92, exif=exif.tobytes())
    add("exif_rotated.jpg", "JPEG with EXIF orientation 6, which must be ignored")

    return made


def pixel_values(path: Path, size: int) -> np.ndarray:
    """The users' pipeline: PIL convert('RGB'), squash-resize with BICUBIC, x / 127.5 - 1, CHW."""
    with Image.open(path) as im:
        rgb = im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    x = np.asarray(rgb, dtype=np.float32) / np.float32(127.5) - np.float32(1.0)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def randomize_(model: torch.nn.Module, seed: int) -> None:
    """Fill every tensor with non-trivial values: no zeros, no ones, no shared defaults."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.state_dict(keep_vars=True).items()):
            if name.endswith("logit_scale"):
                p.copy_(torch.tensor(np.log(10.0)) + 0.3 * torch.randn((), generator=g))
            elif name.endswith("logit_bias"):
                p.copy_(-10.0 + torch.randn((), generator=g))
            elif p.dim() == 1 and name.endswith("weight"):  # layer norm scales
                p.copy_(1.0 + 0.25 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:  # biases
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif any(k in name for k in ("pos_embed", "positional_embedding", "latent", "token_embedding")):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / np.sqrt(fan_in))


def build_open_clip(name: str, cfg: dict, vocab_size: int) -> torch.nn.Module:
    open_clip_name = f"fitcheck-siglip-{name}"
    model_cfg = open_clip_model_cfg(name, cfg, vocab_size)
    # open_clip keeps the config in its registry after reading the file; the temporary
    # directory lives until the process ends (open_clip rescans registered paths).
    cfg_path = Path(_TMP.name) / f"{open_clip_name}.json"
    cfg_path.write_text(json.dumps(model_cfg))
    open_clip.add_model_config(cfg_path)
    model = open_clip.create_model(open_clip_name, device="cpu")
    model.eval()
    randomize_(model, cfg["seed"])
    return model


def open_clip_to_hf(sd: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """The name mapping the Rust loader implements (no transposes anywhere)."""
    out: dict[str, torch.Tensor] = {}
    v, t = "visual.trunk.", "text."
    hv, ht = "vision_model.", "text_model."
    out[hv + "embeddings.patch_embedding.weight"] = sd[v + "patch_embed.proj.weight"]
    out[hv + "embeddings.patch_embedding.bias"] = sd[v + "patch_embed.proj.bias"]
    out[hv + "embeddings.position_embedding.weight"] = sd[v + "pos_embed"].squeeze(0)
    for i in range(layers):
        s, d = f"{v}blocks.{i}.", f"{hv}encoder.layers.{i}."
        for a, b in (("norm1", "layer_norm1"), ("norm2", "layer_norm2"), ("attn.proj", "self_attn.out_proj"),
                     ("mlp.fc1", "mlp.fc1"), ("mlp.fc2", "mlp.fc2")):
            for x in ("weight", "bias"):
                out[f"{d}{b}.{x}"] = sd[f"{s}{a}.{x}"]
        for x in ("weight", "bias"):
            q, k, vv = sd[f"{s}attn.qkv.{x}"].chunk(3, dim=0)
            out[f"{d}self_attn.q_proj.{x}"], out[f"{d}self_attn.k_proj.{x}"], out[f"{d}self_attn.v_proj.{x}"] = q, k, vv
    for x in ("weight", "bias"):
        out[f"{hv}post_layernorm.{x}"] = sd[f"{v}norm.{x}"]
    p, h = v + "attn_pool.", hv + "head."
    out[h + "probe"] = sd[p + "latent"]
    out[h + "attention.in_proj_weight"] = torch.cat([sd[p + "q.weight"], sd[p + "kv.weight"]], 0)
    out[h + "attention.in_proj_bias"] = torch.cat([sd[p + "q.bias"], sd[p + "kv.bias"]], 0)
    for a, b in (("proj", "attention.out_proj"), ("norm", "layernorm"), ("mlp.fc1", "mlp.fc1"), ("mlp.fc2", "mlp.fc2")):
        for x in ("weight", "bias"):
            out[f"{h}{b}.{x}"] = sd[f"{p}{a}.{x}"]

    out[ht + "embeddings.token_embedding.weight"] = sd[t + "token_embedding.weight"]
    out[ht + "embeddings.position_embedding.weight"] = sd[t + "positional_embedding"]
    for i in range(layers):
        s, d = f"{t}transformer.resblocks.{i}.", f"{ht}encoder.layers.{i}."
        for a, b in (("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"), ("attn.out_proj", "self_attn.out_proj"),
                     ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
            for x in ("weight", "bias"):
                out[f"{d}{b}.{x}"] = sd[f"{s}{a}.{x}"]
        for x in ("weight", "bias"):
            q, k, vv = sd[f"{s}attn.in_proj_{x}"].chunk(3, dim=0)
            out[f"{d}self_attn.q_proj.{x}"], out[f"{d}self_attn.k_proj.{x}"], out[f"{d}self_attn.v_proj.{x}"] = q, k, vv
    for x in ("weight", "bias"):
        out[f"{ht}final_layer_norm.{x}"] = sd[f"{t}ln_final.{x}"]
        out[f"{ht}head.{x}"] = sd[f"{t}text_projection.{x}"]
    out["logit_scale"] = sd["logit_scale"].reshape(1)
    out["logit_bias"] = sd["logit_bias"].reshape(1)
    return {k: v.contiguous().clone() for k, v in out.items()}


def hf_config(cfg: dict, vocab_size: int, act: str) -> SiglipConfig:
    w = cfg["width"]
    inter = int(w * cfg["mlp_ratio"])
    return SiglipConfig(
        text_config=dict(
            vocab_size=vocab_size, hidden_size=w, intermediate_size=inter, num_hidden_layers=cfg["layers"],
            num_attention_heads=cfg["heads"], max_position_embeddings=cfg["context_length"], hidden_act=act,
            layer_norm_eps=1e-6, pad_token_id=PAD_ID, projection_size=w,
        ),
        vision_config=dict(
            hidden_size=w, intermediate_size=inter, num_hidden_layers=cfg["layers"], num_attention_heads=cfg["heads"],
            num_channels=3, image_size=cfg["image_size"], patch_size=cfg["patch_size"], hidden_act=act,
            layer_norm_eps=1e-6,
        ),
    )


def l2n(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x, dim=-1)


@torch.no_grad()
def hf_features(model: SiglipModel, ids: torch.Tensor, px: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # No attention_mask: open_clip and the Marqo wrapper never use one, and candle has none.
    t = model.get_text_features(input_ids=ids)
    i = model.get_image_features(pixel_values=px)
    t = t.pooler_output if hasattr(t, "pooler_output") else t
    i = i.pooler_output if hasattr(i, "pooler_output") else i
    return l2n(t), l2n(i)


@torch.no_grad()
def oc_features(model, ids: torch.Tensor, px: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return model.encode_text(ids, normalize=True), model.encode_image(px, normalize=True)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def versions() -> dict:
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "open_clip": open_clip.__version__,
        "timm": timm.__version__,
        "pillow": PIL.__version__,
        "tokenizers": __import__("tokenizers").__version__,
        "sentencepiece": spm.__version__,
        "ftfy": ftfy.__version__,
        "numpy": np.__version__,
        "safetensors": __import__("safetensors").__version__,
    }


def write_tokenizer(dest: Path, ctx: int, kind: str, tok: Tokenizer, spiece: bytes, with_spiece: bool) -> None:
    tok.save(str(dest / "tokenizer.json"))
    for fname, obj in tokenizer_files(ctx, kind).items():
        write_json(dest / fname, obj)
    if with_spiece:
        (dest / "spiece.model").write_bytes(spiece)


def write_reference(dest: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(dest / "reference.safetensors"),
              metadata={"format": "pt"})
    write_json(dest / "reference.json", meta)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def main() -> None:
    # Everything but the hand-written README.md is regenerated.
    OUT.mkdir(parents=True, exist_ok=True)
    for entry in OUT.iterdir():
        if entry.name == "README.md":
            continue
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    register_timm_models()

    # Tokenizer ---------------------------------------------------------------------------------
    spiece = train_sentencepiece()
    tok_tmp = OUT / ".tok"
    tok_tmp.mkdir()
    (tok_tmp / "spiece.model").write_bytes(spiece)
    tok = tokenizer_json_from_spiece(tok_tmp / "spiece.model")
    sp = spm.SentencePieceProcessor(model_proto=spiece)
    vocab_size = sp.get_piece_size()
    assert [sp.id_to_piece(i) for i in range(3)] == ["<pad>", "</s>", "<unk>"]
    assert tok.token_to_id("</s>") == EOS_ID and tok.get_vocab_size() == vocab_size
    shutil.rmtree(tok_tmp)

    # Queries and images ---------------------------------------------------------------------------
    assert len(QUERIES) >= 110 and len(set(QUERIES)) == len(QUERIES), (len(QUERIES), len(set(QUERIES)))
    write_json(OUT / "queries.json", QUERIES)
    image_info = make_images(OUT / "images")
    write_json(OUT / "images" / "images.json", image_info)
    image_files = [d["file"] for d in image_info]

    summary = {"vocab_size": vocab_size, "configs": {}}
    mismatches_log = []

    for name, cfg in CONFIGS.items():
        ctx, S, w = cfg["context_length"], cfg["image_size"], cfg["width"]
        base = OUT / name
        model = build_open_clip(name, cfg, vocab_size)
        sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        assert sd["logit_scale"].dim() == 0 and sd["logit_bias"].dim() == 0
        model_cfg = open_clip_model_cfg(name, cfg, vocab_size)
        oc_json = {"model_cfg": model_cfg, "preprocess_cfg": PREPROCESS_CFG}
        px = torch.from_numpy(np.stack([pixel_values(OUT / "images" / f, S) for f in image_files]))

        # open_clip layout ----------------------------------------------------------------------
        d_oc = base / "open_clip"
        d_oc.mkdir(parents=True)
        save_file(sd, str(d_oc / "open_clip_model.safetensors"), metadata={"format": "pt"})
        write_json(d_oc / "open_clip_config.json", oc_json)
        write_tokenizer(d_oc, ctx, "open_clip", tok, spiece, with_spiece=False)

        # marqo layout ----------------------------------------------------------------------------
        d_mq = base / "marqo"
        d_mq.mkdir(parents=True)
        save_file({"model." + k: v for k, v in sd.items()}, str(d_mq / "model.safetensors"),
                  metadata={"format": "pt"})
        write_json(d_mq / "open_clip_config.json", oc_json)
        write_json(d_mq / "config.json", {
            "auto_map": {
                "AutoConfig": "marqo_fashionSigLIP.MarqoFashionSigLIPConfig",
                "AutoModel": "marqo_fashionSigLIP.MarqoFashionSigLIP",
                "AutoProcessor": "marqo_fashionSigLIP.MarqoFashionSigLIPProcessor",
            },
            "open_clip_model_name": f"hf-hub:fitcheck-fixtures/siglip-{name}",
            "model_type": "siglip",
        })
        write_json(d_mq / "preprocessor_config.json", {
            "do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
            "image_mean": [0.5, 0.5, 0.5], "image_processor_type": "SiglipImageProcessor",
            "image_std": [0.5, 0.5, 0.5], "processor_class": "MarqoFashionSigLIPProcessor",
            "resample": 3, "rescale_factor": 1 / 255, "size": {"height": S, "width": S},
        })
        # Marqo's repo also carries spiece.model; nothing here reads it, so it is left out (245 KB).
        write_tokenizer(d_mq, ctx, "marqo", tok, spiece, with_spiece=False)

        # Python reference for open_clip and marqo: load each layout back from disk --------------
        oc_model = open_clip.create_model(f"local-dir:{d_oc}", device="cpu").eval()
        loaded = {k: v for k, v in oc_model.state_dict().items()}
        assert loaded.keys() == sd.keys() and all(torch.equal(loaded[k], sd[k]) for k in sd)
        oc_tok = open_clip.get_tokenizer(f"local-dir:{d_oc}")
        assert oc_tok.context_length == ctx and oc_tok.tokenizer.pad_token_id == PAD_ID

        class MarqoWrapper(torch.nn.Module):  # what Marqo's AutoModel holds: self.model = open_clip model
            def __init__(self):
                super().__init__()
                self.model = open_clip.create_model(f"fitcheck-siglip-{name}", device="cpu")

        mq = MarqoWrapper().eval()
        missing, unexpected = mq.load_state_dict(load_file(str(d_mq / "model.safetensors")), strict=True)
        assert not missing and not unexpected
        mq_tok = open_clip.get_tokenizer(f"local-dir:{d_mq}")

        basic = [basic_clean(q) for q in QUERIES]
        cleaned_oc = [_clean_canonicalize(q) for q in QUERIES]
        ids_oc = oc_tok(QUERIES)
        ids_mq = mq_tok(QUERIES)
        assert ids_oc.dtype == torch.int64 and tuple(ids_oc.shape) == (len(QUERIES), ctx)
        assert torch.equal(ids_oc, ids_mq)
        # The recipe the Rust side follows gives the same ids: canonicalize, then tokenizer.json with
        # truncation + fixed padding.
        ids_file = torch.tensor(encode_fixed(tok, cleaned_oc, ctx))
        assert torch.equal(ids_file, ids_oc), "open_clip ids differ from tokenizer.json + canonicalize"

        t_oc, i_oc = oc_features(oc_model, ids_oc, px)
        t_mq, i_mq = oc_features(mq.model, ids_mq, px)
        assert torch.equal(t_oc, t_mq) and torch.equal(i_oc, i_mq), "marqo and open_clip layouts disagree"

        # hf layout: the same weights, mapped ---------------------------------------------------
        hf_sd = open_clip_to_hf(sd, cfg["layers"])
        # Proof of the mapping: with exact GELU the HF model reproduces open_clip.
        check = SiglipModel(hf_config(cfg, vocab_size, "gelu")).eval()
        missing, unexpected = check.load_state_dict(hf_sd, strict=True)
        assert not missing and not unexpected
        t_chk, i_chk = hf_features(check, ids_oc, px)
        mapping_err = max(max_diff(t_chk, t_oc), max_diff(i_chk, i_oc))
        assert mapping_err < 1e-5, f"{name}: mapped weights differ from open_clip by {mapping_err}"

        d_hf = base / "hf"
        d_hf.mkdir(parents=True)
        hf_model = SiglipModel(hf_config(cfg, vocab_size, cfg["hf_act"])).eval()
        hf_model.load_state_dict(hf_sd, strict=True)
        hf_model.save_pretrained(str(d_hf), safe_serialization=True)
        write_json(d_hf / "preprocessor_config.json", {
            "do_convert_rgb": None, "do_normalize": True, "do_rescale": True, "do_resize": True,
            "image_mean": [0.5, 0.5, 0.5], "image_processor_type": "SiglipImageProcessor",
            "image_std": [0.5, 0.5, 0.5], "processor_class": "SiglipProcessor",
            "resample": 3, "rescale_factor": 1 / 255, "size": {"height": S, "width": S},
        })
        write_tokenizer(d_hf, ctx, "hf", tok, spiece, with_spiece=True)

        hf_loaded = SiglipModel.from_pretrained(str(d_hf)).eval()
        assert hf_loaded.config.text_config.hidden_act == cfg["hf_act"]
        hf_tok = SiglipTokenizer.from_pretrained(str(d_hf))
        assert hf_tok.pad_token_id == PAD_ID and hf_tok.eos_token_id == EOS_ID and hf_tok.model_max_length == ctx
        ids_hf = hf_tok(QUERIES, max_length=ctx, padding="max_length", truncation=True,
                        return_tensors="pt").input_ids
        cleaned_hf = [hf_siglip_clean(q) for q in QUERIES]
        ids_hf_file = torch.tensor(encode_fixed(tok, cleaned_hf, ctx))
        bad = [i for i in range(len(QUERIES)) if not torch.equal(ids_hf[i], ids_hf_file[i])]
        for i in bad:
            mismatches_log.append(f"{name}/hf query {i} {QUERIES[i]!r}: SiglipTokenizer {ids_hf[i].tolist()} "
                                  f"vs clean+tokenizer.json {ids_hf_file[i].tolist()}")
        t_hf, i_hf = hf_features(hf_loaded, ids_hf, px)
        # tanh vs erf must be visible at these sizes, or the tiny-a fixture would not test it
        t_erf, i_erf = hf_features(check, ids_hf, px)
        gelu_gap = max(max_diff(t_hf, t_erf), max_diff(i_hf, i_erf))
        if cfg["hf_act"] == "gelu":
            assert gelu_gap == 0.0 or gelu_gap < 1e-6
        else:
            assert gelu_gap > 1e-5, f"{name}: tanh GELU indistinguishable from erf ({gelu_gap})"

        # references ------------------------------------------------------------------------------
        common = {
            "config": name, "context_length": ctx, "image_size": S, "embed_dim": w,
            "queries_file": "../../queries.json", "images": image_files, "versions": versions(),
        }
        for layout, d, ids, te, ie, cleaned, gelu in (
            ("marqo", d_mq, ids_mq, t_mq, i_mq, cleaned_oc, "erf"),
            ("open_clip", d_oc, ids_oc, t_oc, i_oc, cleaned_oc, "erf"),
            ("hf", d_hf, ids_hf, t_hf, i_hf, cleaned_hf, "erf" if cfg["hf_act"] == "gelu" else "tanh"),
        ):
            meta = {"layout": layout, **common, "gelu": gelu, "cleaned": cleaned}
            if layout != "hf":
                meta["basic_clean"] = basic
                meta["cleaning"] = "open_clip canonicalize_text(basic_clean(x))"
            else:
                meta["cleaning"] = "transformers SiglipTokenizer (lower, delete string.punctuation, \\s+ -> ' ', strip)"
                meta["tokenizer_json_mismatch"] = bad
            meta["pixel_pipeline"] = ("PIL Image.open(p).convert('RGB').resize((S, S), BICUBIC); "
                                      "x / 127.5 - 1 (float32); CHW")
            write_reference(d, {
                "input_ids": ids.to(torch.int64),
                "text_embeds": te.to(torch.float32),
                "pixel_values": px.to(torch.float32),
                "image_embeds": ie.to(torch.float32),
            }, meta)

        summary["configs"][name] = {
            "tensors_open_clip": len(sd), "tensors_hf": len(hf_sd),
            "params": int(sum(v.numel() for v in sd.values())),
            "mapping_max_abs_err": mapping_err, "tanh_vs_erf_max_abs": gelu_gap,
            "image_cos_offdiag_max": float((i_oc @ i_oc.T - torch.eye(len(image_files))).max()),
            "text_cos_offdiag_max": float((t_oc @ t_oc.T - torch.eye(len(QUERIES))).max()),
        }
        if name == "tiny-a":
            make_broken(OUT / "broken", d_mq, sd)

    make_pipeline_fixtures()

    print(json.dumps(summary, indent=2))
    if mismatches_log:
        print("hf layout: SiglipTokenizer vs canonical clean + tokenizer.json mismatches:")
        print("\n".join(mismatches_log))
    print(f"wrote {OUT.relative_to(ROOT)}")


# --------------------------------------------------------------------------------------------
# The open_clip pipeline: resize in the source mode, then convert
# --------------------------------------------------------------------------------------------


def make_pipeline_images(out: Path) -> list[dict]:
    """Images whose Pillow mode makes open_clip's order (resize, then convert('RGB')) differ from
    the team's (convert, then resize). Sizes are odd so that NEAREST's position rounding matters."""
    import skimage.data as data

    out.mkdir(parents=True, exist_ok=True)

    def photo(name: str, size: tuple[int, int]) -> Image.Image:
        return Image.fromarray(getattr(data, name)()).resize(size, Image.Resampling.LANCZOS)

    made = []

    def add(fname: str, what: str) -> None:
        with Image.open(out / fname) as im:
            made.append({"file": fname, "what": what, "pil_mode": im.mode, "size": list(im.size)})

    # rembg-style cut-out: transparent background, black under it, a soft edge.
    cut = np.asarray(photo("chelsea", (150, 100))).copy()
    yy, xx = np.mgrid[0:100, 0:150]
    r = np.sqrt(((xx - 75) / 60.0) ** 2 + ((yy - 50) / 40.0) ** 2)
    alpha = np.clip((1.15 - r) / 0.15 * 255, 0, 255).astype(np.uint8)
    cut[alpha == 0] = 0
    Image.fromarray(np.dstack([cut, alpha]), "RGBA").save(out / "cutout_black.png")
    add("cutout_black.png", "RGBA cut-out: opaque ellipse, soft edge, transparent black background")

    photo("astronaut", (97, 61)).quantize(colors=24, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
                                          ).save(out / "palette.png")
    add("palette.png", "palette (P) PNG, 24 colours, 97x61")

    pal = photo("coffee", (71, 45)).quantize(colors=12, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    pal.save(out / "palette_trns.png", transparency=0)
    add("palette_trns.png", "palette PNG with a tRNS chunk (index 0 transparent), 71x45")

    cam = np.asarray(Image.fromarray(data.camera()).resize((80, 50), Image.Resampling.LANCZOS))
    ramp = np.tile(np.linspace(0, 255, 80).astype(np.uint8), (50, 1))
    ramp[:, :12] = 0  # a fully transparent band
    Image.fromarray(np.dstack([cam, ramp]), "LA").save(out / "gray_alpha.png")
    add("gray_alpha.png", "LA PNG, alpha 0 on the left, then ramping to 255, 80x50")

    low = np.asarray(Image.fromarray(data.camera()).resize((66, 58), Image.Resampling.LANCZOS)).astype(np.uint16) * 2
    Image.fromarray(low).save(out / "gray16.png")
    add("gray16.png", "16-bit grey (I;16) PNG, values 0..510: resized in 16 bits, then clipped at 255")

    bits = np.asarray(photo("astronaut", (53, 47)).convert("L")) > 110
    Image.fromarray(bits).save(out / "bilevel.png")
    add("bilevel.png", "1-bit (mode 1) PNG, 53x47")
    return made


@torch.no_grad()
def make_pipeline_fixtures() -> None:
    """tests/fixtures/siglip/pipeline/: the images above, and per configuration what plain
    open_clip computes for them (`preprocess(Image.open(p))` of the open_clip/ checkpoint, then
    `encode_image(normalize=True)`), next to the team's order (`pixel_values`) for comparison.
    Reads the open_clip/ checkpoints already written; changes nothing else."""
    out = OUT / "pipeline"
    if out.exists():
        shutil.rmtree(out)
    info = make_pipeline_images(out / "images")
    write_json(out / "images.json", info)
    files = [d["file"] for d in info]
    for name in CONFIGS:
        d_oc = OUT / name / "open_clip"
        model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{d_oc}", device="cpu")
        model.eval()
        px_oc, px_rgb = [], []
        for f in files:
            with Image.open(out / "images" / f) as im:
                px_oc.append(preprocess(im))
            px_rgb.append(torch.from_numpy(pixel_values(out / "images" / f, CONFIGS[name]["image_size"])))
        px_oc, px_rgb = torch.stack(px_oc), torch.stack(px_rgb)
        e_oc = model.encode_image(px_oc, normalize=True)
        e_rgb = model.encode_image(px_rgb, normalize=True)
        save_file({
            "pixel_values": px_oc.to(torch.float32).contiguous(),
            "image_embeds": e_oc.to(torch.float32).contiguous(),
            "pixel_values_rgb_first": px_rgb.to(torch.float32).contiguous(),
            "image_embeds_rgb_first": e_rgb.to(torch.float32).contiguous(),
        }, str(out / f"{name}.safetensors"), metadata={"format": "pt"})
        write_json(out / f"{name}.json", {
            "config": name, "checkpoint": f"../{name}/open_clip", "images": files,
            "preprocess": repr(preprocess),
            "pixel_pipeline": "open_clip preprocess(Image.open(p)): Resize((S, S), BICUBIC) in the source mode, "
                              "convert('RGB'), ToTensor, Normalize(0.5, 0.5)",
            "pixel_pipeline_rgb_first": "Image.open(p).convert('RGB').resize((S, S), BICUBIC), x / 127.5 - 1",
            "max_abs_embed_diff_between_pipelines": {
                f: float((e_oc[i] - e_rgb[i]).abs().max()) for i, f in enumerate(files)
            },
            "versions": versions(),
        })


def make_broken(out: Path, src: Path, sd: dict[str, torch.Tensor]) -> None:
    """Checkpoints that a loader must reject with a useful error; all derived from tiny-a/marqo."""
    # No tokenizer files: tokenizer.json is 345 KB (the NFKC charsmap), four copies would be a
    # sixth of the fixture budget. A test that needs them takes tiny-a/marqo's.
    files = ["config.json", "open_clip_config.json", "preprocessor_config.json"]

    def dir_with(name: str) -> Path:
        d = out / name
        d.mkdir(parents=True)
        for f in files:
            shutil.copy(src / f, d / f)
        return d

    marqo = {"model." + k: v for k, v in sd.items()}

    d = dir_with("missing-tensor")
    save_file({k: v for k, v in marqo.items() if k != "model.visual.trunk.blocks.1.attn.proj.weight"},
              str(d / "model.safetensors"), metadata={"format": "pt"})

    d = dir_with("wrong-shape")
    bad = dict(marqo)
    bad["model.text.text_projection.weight"] = marqo["model.text.text_projection.weight"][:, :-1].contiguous()
    save_file(bad, str(d / "model.safetensors"), metadata={"format": "pt"})

    d = dir_with("extra-tensor")
    extra = dict(marqo)
    extra["model.text.transformer.resblocks.0.attn.lora_A.weight"] = torch.full((4, 32), 0.01)
    save_file(extra, str(d / "model.safetensors"), metadata={"format": "pt"})

    d = dir_with("pickle-only")
    torch.save(marqo, d / "pytorch_model.bin")

    write_json(out / "broken.json", {
        "missing-tensor": {"removed": "model.visual.trunk.blocks.1.attn.proj.weight"},
        "wrong-shape": {"tensor": "model.text.text_projection.weight", "shape": [32, 31], "expected": [32, 32]},
        "extra-tensor": {"added": "model.text.transformer.resblocks.0.attn.lora_A.weight", "shape": [4, 32]},
        "pickle-only": {"file": "pytorch_model.bin", "note": "torch.save pickle of the marqo state dict; no safetensors"},
    })


if __name__ == "__main__":
    if sys.argv[1:] == ["--clip-only"]:
        # Only tests/fixtures/clip/ (scripts/fidelity/clip_fixtures.py); the SigLIP fixtures stay as they are.
        import clip_fixtures

        sys.exit(clip_fixtures.main())
    if sys.argv[1:] == ["--pipeline-only"]:
        # Adds tests/fixtures/siglip/pipeline/ from the checkpoints already there, leaving every
        # other fixture untouched.
        register_timm_models()
        sys.exit(make_pipeline_fixtures())
    sys.exit(main())
