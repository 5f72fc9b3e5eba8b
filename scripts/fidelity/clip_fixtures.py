"""Generate the CLIP fidelity fixtures under tests/fixtures/clip/ (called by generate.py).

    python scripts/fidelity/generate.py --clip-only   # only tests/fixtures/clip/, everything else untouched

Two tiny open_clip `CLIP` models with seeded random weights (one with QuickGELU, one with exact GELU, towers of
different widths so the projections are not square), each written in three layouts: a Marqo fashionCLIP
`AutoModel` push (`model.` + open_clip names), raw open_clip files, and transformers' `CLIPModel`. Next to each:
what open_clip or transformers computes for the queries and images of tests/fixtures/siglip/ plus a few images
whose center crop falls between pixels. See tests/fixtures/clip/README.md.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import open_clip
from open_clip.tokenizer import SimpleTokenizer, get_clean_fn
from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessorPil, CLIPModel

import clip_bpe
import generate as G

OUT = G.ROOT / "tests" / "fixtures" / "clip"
SIGLIP = G.ROOT / "tests" / "fixtures" / "siglip"
MEAN = [0.48145466, 0.4578275, 0.40821073]  # open_clip OPENAI_DATASET_MEAN / STD
STD = [0.26862954, 0.26130258, 0.27577711]

CONFIGS = {
    "clip-a": dict(image_size=32, patch=8, v_width=32, v_layers=2, head_width=8, t_width=24, t_heads=3,
                   t_layers=2, embed=16, context=16, mlp_ratio=4.0, quick_gelu=True, seed=301),
    "clip-b": dict(image_size=48, patch=16, v_width=48, v_layers=3, head_width=8, t_width=32, t_heads=4,
                   t_layers=3, embed=24, context=24, mlp_ratio=2.0, quick_gelu=False, seed=302),
}


def model_cfg(c: dict, vocab: int) -> dict:
    return {
        "embed_dim": c["embed"],
        "quick_gelu": c["quick_gelu"],
        "vision_cfg": {"image_size": c["image_size"], "layers": c["v_layers"], "width": c["v_width"],
                       "head_width": c["head_width"], "patch_size": c["patch"], "mlp_ratio": c["mlp_ratio"]},
        "text_cfg": {"context_length": c["context"], "vocab_size": vocab, "width": c["t_width"],
                     "heads": c["t_heads"], "layers": c["t_layers"], "mlp_ratio": c["mlp_ratio"]},
    }


PREPROCESS_CFG = {"mean": MEAN, "std": STD, "interpolation": "bicubic", "resize_mode": "shortest"}


def to_hf(sd: dict[str, torch.Tensor], v_layers: int, t_layers: int) -> dict[str, torch.Tensor]:
    """open_clip CLIP names onto transformers' CLIPModel names: fused q/k/v split, projections transposed."""
    out = {
        "vision_model.embeddings.patch_embedding.weight": sd["visual.conv1.weight"],
        "vision_model.embeddings.class_embedding": sd["visual.class_embedding"],
        "vision_model.embeddings.position_embedding.weight": sd["visual.positional_embedding"],
        "visual_projection.weight": sd["visual.proj"].T,
        "text_model.embeddings.token_embedding.weight": sd["token_embedding.weight"],
        "text_model.embeddings.position_embedding.weight": sd["positional_embedding"],
        "text_projection.weight": sd["text_projection"].T,
        "logit_scale": sd["logit_scale"],
    }
    for s in ("weight", "bias"):
        out[f"vision_model.pre_layrnorm.{s}"] = sd[f"visual.ln_pre.{s}"]
        out[f"vision_model.post_layernorm.{s}"] = sd[f"visual.ln_post.{s}"]
        out[f"text_model.final_layer_norm.{s}"] = sd[f"ln_final.{s}"]
    for oc, hf, n in (("visual.transformer", "vision_model.encoder", v_layers), ("transformer", "text_model.encoder", t_layers)):
        for i in range(n):
            a, b = f"{oc}.resblocks.{i}", f"{hf}.layers.{i}"
            for s in ("weight", "bias"):
                out[f"{b}.layer_norm1.{s}"] = sd[f"{a}.ln_1.{s}"]
                out[f"{b}.layer_norm2.{s}"] = sd[f"{a}.ln_2.{s}"]
                out[f"{b}.self_attn.out_proj.{s}"] = sd[f"{a}.attn.out_proj.{s}"]
                out[f"{b}.mlp.fc1.{s}"] = sd[f"{a}.mlp.c_fc.{s}"]
                out[f"{b}.mlp.fc2.{s}"] = sd[f"{a}.mlp.c_proj.{s}"]
                q, k, v = sd[f"{a}.attn.in_proj_{s}"].chunk(3, dim=0)
                out[f"{b}.self_attn.q_proj.{s}"], out[f"{b}.self_attn.k_proj.{s}"] = q, k
                out[f"{b}.self_attn.v_proj.{s}"] = v
    return {k: v.contiguous().clone() for k, v in out.items()}


def hf_config(c: dict, vocab: int, eot: int) -> CLIPConfig:
    act = "quick_gelu" if c["quick_gelu"] else "gelu"
    text = dict(vocab_size=vocab, hidden_size=c["t_width"], intermediate_size=int(c["t_width"] * c["mlp_ratio"]),
                num_hidden_layers=c["t_layers"], num_attention_heads=c["t_heads"],
                max_position_embeddings=c["context"], hidden_act=act, layer_norm_eps=1e-5,
                bos_token_id=eot - 1, eos_token_id=eot, pad_token_id=eot, projection_dim=c["embed"])
    vision = dict(hidden_size=c["v_width"], intermediate_size=int(c["v_width"] * c["mlp_ratio"]),
                  num_hidden_layers=c["v_layers"], num_attention_heads=c["v_width"] // c["head_width"],
                  image_size=c["image_size"], patch_size=c["patch"], hidden_act=act, layer_norm_eps=1e-5,
                  projection_dim=c["embed"])
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=c["embed"])


def crop_images(out: Path) -> list[str]:
    """Images whose center crop offset is an odd number of half pixels at both image sizes, so torchvision's
    `round` (open_clip) and transformers' floor division pick different rows or columns; one tall, one wide,
    one grey."""
    def odd_half(w: int, h: int) -> bool:
        for size in (32, 48):
            short, long = min(w, h), max(w, h)
            d = int(size * long / short) - size
            if d % 4 != 3:
                return False
        return True

    shapes = [(w, h) for h in range(33, 90) for w in range(h + 1, 3 * h) if odd_half(w, h)]
    assert len(shapes) >= 2, "no image shape has an odd half-pixel crop at both sizes"
    (w0, h0), (w1, h1) = shapes[0], shapes[len(shapes) // 2]
    found = [(w0, h0), (h1, w1), (w1, h1)]  # wide, tall, wide grey
    out.mkdir(parents=True)
    rng = np.random.default_rng(7)
    names = []
    for i, (w, h) in enumerate(found):
        # Smooth gradients plus noise: every row and column differs, so an off-by-one crop shows.
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (w + h)], -1)
        arr = np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr)
        name = f"crop_{w}x{h}.png"
        (img.convert("L") if i == 2 else img).save(out / name)
        names.append(name)
    return names


@torch.no_grad()
def main() -> None:
    if OUT.exists():
        for entry in OUT.iterdir():
            if entry.name != "README.md":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    OUT.mkdir(parents=True, exist_ok=True)
    queries = json.loads((SIGLIP / "queries.json").read_text())
    extra = crop_images(OUT / "images")
    # Paths relative to tests/fixtures/: the SigLIP images plus the crop images.
    siglip_images = [e["file"] for e in json.loads((SIGLIP / "images" / "images.json").read_text())]
    images = [f"siglip/images/{f}" for f in siglip_images] + [f"clip/images/{f}" for f in extra]
    fixtures = G.ROOT / "tests" / "fixtures"

    # Tokenizer: merges learned from the fixture corpus and the queries (cleaned as open_clip cleans).
    clean = get_clean_fn("lower")
    words = Counter(w for t in G.tokenizer_corpus() + queries for w in clean(t).split())
    merges = clip_bpe.learn_merges(words, max_merges=400)
    bpe_path = OUT / "bpe_merges.txt.gz"
    clip_bpe.merges_gz(merges, bpe_path)
    tok = clip_bpe.tokenizer_json(merges)
    vocab = tok.get_vocab_size()
    eot = tok.token_to_id(clip_bpe.EOS)
    assert eot == vocab - 1 and tok.token_to_id(clip_bpe.BOS) == vocab - 2
    summary = {"vocab_size": vocab, "merges": len(merges), "configs": {}}

    for name, c in CONFIGS.items():
        ctx, size = c["context"], c["image_size"]
        mc = model_cfg(c, vocab)
        model = open_clip.CLIP(mc["embed_dim"], mc["vision_cfg"], mc["text_cfg"], quick_gelu=c["quick_gelu"])
        model.eval()
        G.randomize_(model, c["seed"])
        sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}

        # Text: open_clip's SimpleTokenizer with these merges is the reference for the open_clip layouts.
        simple = SimpleTokenizer(bpe_path=str(bpe_path), context_length=ctx)
        oc_ids = simple(queries)
        assert simple.encoder["<end_of_text>"] == eot, "SimpleTokenizer and tokenizer.json disagree on ids"
        cleaned = [clean(q) for q in queries]
        ours = torch.zeros(len(queries), ctx, dtype=torch.long)
        for i, text in enumerate(cleaned):
            ids = tok.encode(text).ids
            if len(ids) > ctx:
                ids = ids[: ctx - 1] + [eot]
            ours[i, : len(ids)] = torch.tensor(ids)
        bad = [i for i in range(len(queries)) if not torch.equal(ours[i], oc_ids[i])]
        assert not bad, f"{name}: cleaning + tokenizer.json differs from SimpleTokenizer at {bad}"

        # Images: open_clip's eval transform (shortest side, center crop) after convert('RGB').
        preprocess = open_clip.image_transform(size, is_train=False, mean=MEAN, std=STD,
                                               resize_mode="shortest", interpolation="bicubic")
        geometry = preprocess.transforms[:2]  # Resize(size) and CenterCrop(size), on PIL images

        def crop_u8(img: Image.Image) -> np.ndarray:
            for t in geometry:
                img = t(img)
            return np.asarray(img.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1).copy()

        px_rgb, u8_rgb, px_src, u8_src = [], [], [], []
        for rel in images:
            with Image.open(fixtures / rel) as im:
                im.load()
                rgb = im.convert("RGB")
                px_rgb.append(preprocess(rgb))
                u8_rgb.append(crop_u8(rgb))
                px_src.append(preprocess(im))
                u8_src.append(crop_u8(im))
        px_rgb, px_src = torch.stack(px_rgb), torch.stack(px_src)
        mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
        for px, u8 in ((px_rgb, u8_rgb), (px_src, u8_src)):
            back = (torch.from_numpy(np.stack(u8)).float() / 255 - mean) / std
            assert G.max_diff(back, px) < 1e-5, "the crop geometry is not the transform's"

        text_oc = model.encode_text(oc_ids, normalize=True)
        image_oc = model.encode_image(px_rgb, normalize=True)
        image_src = model.encode_image(px_src, normalize=True)

        # transformers: the same weights under CLIPModel's names must give the same features.
        hf_sd = to_hf(sd, c["v_layers"], c["t_layers"])
        hf = CLIPModel(hf_config(c, vocab, eot)).eval()
        missing, unexpected = hf.load_state_dict(hf_sd, strict=False)
        assert not unexpected and all("position_ids" in m for m in missing), (missing, unexpected)
        t_hf = G.l2n(hf.get_text_features(input_ids=oc_ids).pooler_output)
        i_hf = G.l2n(hf.get_image_features(pixel_values=px_rgb).pooler_output)
        d_text, d_image = G.max_diff(t_hf, text_oc), G.max_diff(i_hf, image_oc)
        assert d_text < 1e-5 and d_image < 1e-5, (name, d_text, d_image)

        # Layouts ------------------------------------------------------------------------------------
        base = OUT / name
        for layout in ("marqo", "open_clip", "hf"):
            d = base / layout
            d.mkdir(parents=True)
            tok.save(str(d / "tokenizer.json"))
            for fname, obj in clip_bpe.hf_tokenizer_files(ctx).items():
                G.write_json(d / fname, obj)
        proc_cfg = {"crop_size": {"height": size, "width": size}, "do_center_crop": True, "do_convert_rgb": True,
                    "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": MEAN,
                    "image_processor_type": "CLIPImageProcessor", "image_std": STD, "resample": 3,
                    "rescale_factor": 1 / 255, "size": {"shortest_edge": size}}
        oc_cfg = {"model_cfg": mc, "preprocess_cfg": PREPROCESS_CFG}
        G.save_file({f"model.{k}": v for k, v in sd.items()}, str(base / "marqo" / "model.safetensors"),
                    metadata={"format": "pt"})
        G.write_json(base / "marqo" / "config.json", {
            "auto_map": {"AutoConfig": "marqo_fashionCLIP.MarqoFashionCLIPConfig",
                         "AutoModel": "marqo_fashionCLIP.MarqoFashionCLIP",
                         "AutoProcessor": "marqo_fashionCLIP.CLIPProcessor"},
            "open_clip_model_name": f"hf-hub:fitcheck-fixtures/{name}",
            "model_type": "clip",
        })
        G.write_json(base / "marqo" / "open_clip_config.json", oc_cfg)
        G.write_json(base / "marqo" / "preprocessor_config.json", proc_cfg)
        G.save_file(sd, str(base / "open_clip" / "open_clip_model.safetensors"), metadata={"format": "pt"})
        G.write_json(base / "open_clip" / "open_clip_config.json", oc_cfg)
        hf.save_pretrained(str(base / "hf"), safe_serialization=True)
        G.write_json(base / "hf" / "preprocessor_config.json", proc_cfg)

        # The marqo layout through a strict load into a wrapper holding the model as `.model`, like Marqo's.
        wrapper = torch.nn.Module()
        wrapper.model = open_clip.CLIP(mc["embed_dim"], mc["vision_cfg"], mc["text_cfg"], quick_gelu=c["quick_gelu"])
        wrapper.load_state_dict(G.load_file(str(base / "marqo" / "model.safetensors")), strict=True)
        wrapper.eval()
        assert G.max_diff(wrapper.model.encode_text(oc_ids, normalize=True), text_oc) == 0.0

        # transformers' own tokenizer and PIL image processor, from the saved hf/ directory.
        hf_tok = AutoTokenizer.from_pretrained(str(base / "hf"))
        hf_ids = hf_tok(queries, padding="max_length", truncation=True, max_length=ctx, return_tensors="pt").input_ids
        raw = torch.full((len(queries), ctx), eot, dtype=torch.long)
        for i, q in enumerate(queries):
            ids = tok.encode(q).ids
            if len(ids) > ctx:
                ids = ids[: ctx - 1] + [eot]
            raw[i, : len(ids)] = torch.tensor(ids)
        assert torch.equal(hf_ids, raw), "transformers' tokenizer differs from tokenizer.json + padding"
        proc = CLIPImageProcessorPil.from_pretrained(str(base / "hf"))
        px_hf = []
        for rel in images:
            with Image.open(fixtures / rel) as im:
                # As an array: handed a PIL image converted from a palette with a transparent colour,
                # transformers composites that colour over white, which is not convert('RGB').
                rgb = np.asarray(im.convert("RGB"))
                px_hf.append(proc(images=[rgb], return_tensors="pt").pixel_values[0])
        px_hf = torch.stack(px_hf)
        hf_loaded = CLIPModel.from_pretrained(str(base / "hf")).eval()
        t_hf = G.l2n(hf_loaded.get_text_features(input_ids=hf_ids).pooler_output)
        i_hf = G.l2n(hf_loaded.get_image_features(pixel_values=px_hf).pooler_output)

        # Tokens per query before truncation, start and end included (what a context warning counts).
        counts = [len(simple.encode(q)) + 2 for q in queries]
        common = {"token_counts": counts, "config": name, "context_length": ctx, "image_size": size, "embed_dim": c["embed"],
                  "queries_file": "../../../siglip/queries.json", "images": images, "versions": G.versions(),
                  "activation": "quick_gelu" if c["quick_gelu"] else "gelu"}
        oc_tensors = {"input_ids": oc_ids, "text_embeds": text_oc, "pixel_values": px_rgb,
                      "pixels_u8": torch.from_numpy(np.stack(u8_rgb)), "image_embeds": image_oc,
                      "pixels_u8_source_mode": torch.from_numpy(np.stack(u8_src)),
                      "image_embeds_source_mode": image_src}
        for layout in ("marqo", "open_clip"):
            G.write_reference(base / layout, oc_tensors, {**common, "layout": layout, "cleaned": cleaned,
                              "cleaning": "open_clip lower (ftfy, html unescape twice, whitespace, lower)",
                              "pad_id": 0, "crop": "round"})
        hf_u8 = ((px_hf * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)
        G.write_reference(base / "hf", {"input_ids": hf_ids, "text_embeds": t_hf, "pixel_values": px_hf,
                                        "pixels_u8": hf_u8, "image_embeds": i_hf},
                          {**common, "layout": "hf", "cleaning": "tokenizer.json only", "pad_id": eot,
                           "crop": "floor"})
        summary["configs"][name] = {"hf_vs_open_clip_text": d_text, "hf_vs_open_clip_image": d_image,
                                    "crop_rows_differ": int((hf_u8 != torch.from_numpy(np.stack(u8_rgb))).any(1).any(-1).any(-1).sum())}
        print(name, summary["configs"][name], flush=True)
    G.write_json(OUT / "summary.json", summary)
    make_broken(OUT / "broken", OUT / "clip-a" / "marqo")


def make_broken(out: Path, src: Path) -> None:
    """Copies of clip-a/marqo whose configuration contradicts the weights, or whose weights are incomplete
    (config files and weights only)."""
    out.mkdir()
    sd = G.load_file(str(src / "model.safetensors"))
    cfg = json.loads((src / "open_clip_config.json").read_text())

    def variant(name: str, edit=None, drop: str | None = None) -> None:
        d = out / name
        d.mkdir()
        for f in src.iterdir():
            # No tokenizer or reference: validation must refuse these before the tokenizer is looked for.
            if f.name in ("config.json", "preprocessor_config.json"):
                shutil.copy(f, d / f.name)
        c = json.loads(json.dumps(cfg))
        if edit:
            edit(c)
        G.write_json(d / "open_clip_config.json", c)
        tensors = {k: v for k, v in sd.items() if k != drop}
        G.save_file(tensors, str(d / "model.safetensors"), metadata={"format": "pt"})

    variant("context", lambda c: c["model_cfg"]["text_cfg"].update(context_length=77))
    variant("width", lambda c: c["model_cfg"]["vision_cfg"].update(width=768))
    variant("heads", lambda c: c["model_cfg"]["text_cfg"].update(heads=5))
    variant("activation", lambda c: c["model_cfg"].update(quick_gelu="yes"))
    variant("missing-tensor", drop="model.visual.ln_post.weight")
