"""Trains the two lookbook checkpoints: a tiny SigLIP on synthetic garment drawings with Spanish captions.

    .venv/bin/python scripts/lookbook/train.py            # writes lookbook/checkpoints/checkpoint-{a,b}
    .venv/bin/python scripts/lookbook/train.py --family clip --steps 3000   # writes lookbook/checkpoints/clip-a

A training set is drawn on the fly with the catalog's drawing code and a different seed (it is never written
to disk), each image gets a fresh random caption at every step, and the model is trained with the SigLIP
sigmoid loss. Labels are multi-positive: caption j is positive for image i whenever image i has every tag
that caption j asserts ("remera roja" is right for all red remeras in the batch).

`checkpoint-a` is saved after a fifth of the steps (an undertrained model that the example suite should
partly fail); `checkpoint-b` after all of them. Progress and metrics go to stdout.

`--family clip` trains the tiny CLIP of `tinyclip.py` on the same drawings and captions instead, with CLIP's
InfoNCE loss (softmax cross-entropy in both directions; with several positives in a row or column the target
is spread evenly over them), images resized on their shortest side and center-cropped as CLIP's preprocessing
does, and saves one checkpoint, `clip-a`, after the last step.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import captions  # noqa: E402
import garments  # noqa: E402
import tinyclip as C  # noqa: E402
import tinysiglip as T  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def render_set(n: int, seed: int, shortest: bool = False) -> tuple[np.ndarray, list[list[str]]]:
    """n random garments, drawn like catalog photos (PNG or JPEG round trip), preprocessed to uint8 HWC:
    squashed to the model's size, or (`shortest`) resized on the shortest side and center-cropped."""
    rng = random.Random(seed)
    xs = np.zeros((n, T.IMAGE_SIZE, T.IMAGE_SIZE, 3), dtype=np.uint8)
    tags = []
    for i in range(n):
        spec = garments.random_spec(rng)
        img = garments.draw(spec, rng)
        if rng.random() < 0.4:
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=rng.randint(80, 95))
            img = Image.open(io.BytesIO(buf.getvalue()))
        if shortest:
            xs[i] = np.asarray(center_crop(img.convert("RGB"), T.IMAGE_SIZE))
        else:
            xs[i] = np.asarray(img.convert("RGB").resize((T.IMAGE_SIZE, T.IMAGE_SIZE), Image.BICUBIC))
        tags.append(spec.tags())
    return xs, tags


def center_crop(img: Image.Image, size: int) -> Image.Image:
    """open_clip's eval resize: shortest side to `size` (bicubic), then the center `size` x `size`."""
    w, h = img.size
    nw, nh = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
    img = img.resize((nw, nh), Image.BICUBIC)
    left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


FAMILY = "siglip"


def to_input(xs: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(xs).permute(0, 3, 1, 2).float()
    if FAMILY == "clip":
        mean = torch.tensor(C.MEAN).view(1, 3, 1, 1)
        std = torch.tensor(C.STD).view(1, 3, 1, 1)
        return (x / 255.0 - mean) / std
    return x / 127.5 - 1.0


def contrastive_loss(img: torch.Tensor, txt: torch.Tensor, pos: torch.Tensor, model) -> torch.Tensor:
    """The family's loss over a batch: SigLIP's sigmoid loss, or CLIP's InfoNCE with multi-positive targets
    (each row and column of `pos`, true where image i satisfies caption j, normalised to a distribution)."""
    if FAMILY == "clip":
        logits = img @ txt.T * model.logit_scale.exp()
        p = pos.float()
        i2t = -(p / p.sum(1, keepdim=True) * F.log_softmax(logits, 1)).sum(1).mean()
        t2i = -(p / p.sum(0, keepdim=True) * F.log_softmax(logits, 0)).sum(0).mean()
        return (i2t + t2i) / 2
    logits = img @ txt.T * model.logit_scale.exp() + model.logit_bias
    return -F.logsigmoid((pos.float() * 2 - 1) * logits).sum() / len(img)


def labels_for(reqs: list[frozenset], tags: list[set]) -> torch.Tensor:
    """labels[i, j] = 1 if image i satisfies caption j, else -1. Caption j was written for image j."""
    pos = torch.tensor([[r <= t for r in reqs] for t in tags], dtype=torch.bool)
    assert bool(pos.diagonal().all()), "a caption is not positive for its own image: the label matrix is misaligned"
    return pos.float() * 2 - 1


@torch.no_grad()
def probe(model, enc, xs, tags, rng) -> dict:
    """Retrieval health on a held-out batch: how often the top caption (or image) is a positive."""
    model.eval()
    caps = [captions.caption(t, rng) for t in tags]
    img = model.encode_image(to_input(xs), normalize=True)
    txt = model.encode_text(enc([c for c, _ in caps]), normalize=True)
    pos = labels_for([r for _, r in caps], [set(t) for t in tags]) > 0
    sim = img @ txt.T
    i2t = pos[torch.arange(len(tags)), sim.argmax(1)].float().mean().item()
    t2i = pos[sim.argmax(0), torch.arange(len(tags))].float().mean().item()
    # chance level: the share of positives per row (collapse shows as i2t near this value)
    base = pos.float().mean().item()
    loss = contrastive_loss(img, txt, pos, model).item()
    model.train()
    return {"val_loss": loss, "i2t_top1_pos": i2t, "t2i_top1_pos": t2i, "pos_share": base}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=4500)
    ap.add_argument("--early", type=int, default=None, help="step at which checkpoint-a is saved (default steps/5)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--n-train", type=int, default=6000)
    ap.add_argument("--n-val", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; 1 is much faster than 2 on a machine shared with other jobs")
    ap.add_argument("--out", type=Path, default=ROOT / "lookbook" / "checkpoints")
    ap.add_argument("--family", choices=["siglip", "clip"], default="siglip")
    args = ap.parse_args()
    global FAMILY
    FAMILY = args.family
    clip = FAMILY == "clip"
    early = args.early or args.steps // 5

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    t0 = time.time()

    if clip:
        tokenizer = C.clip_bpe.tokenizer_json(C.build_merges(captions.vocabulary()))
        enc = C.TextEncoder(tokenizer, C.CONTEXT)
    else:
        tokenizer = T.build_tokenizer(captions.vocabulary())
        enc = T.TextEncoder(tokenizer, T.CONTEXT)
    print(f"tokenizer: {tokenizer.get_vocab_size()} pieces", flush=True)

    xs, tags = render_set(args.n_train, args.seed + 1, shortest=clip)
    vx, vtags = render_set(args.n_val, args.seed + 2, shortest=clip)
    tagsets = [set(t) for t in tags]
    print(f"rendered {len(xs)} training + {len(vx)} held-out images in {time.time() - t0:.0f} s", flush=True)
    # the longest caption must fit the context with its </s>
    longest = max(len(tokenizer.encode(enc.clean(captions.caption(t, rng)[0])).ids) for t in tags[:2000])
    context = C.CONTEXT if clip else T.CONTEXT
    assert longest <= context, f"captions need {longest} tokens, context is {context}"

    if clip:
        model = C.create(tokenizer.get_vocab_size())  # logit scale starts at CLIP's ln(1 / 0.07)
    else:
        model = T.create(tokenizer.get_vocab_size())
        with torch.no_grad():
            model.logit_scale.fill_(math.log(10.0))
            model.logit_bias.fill_(-3.0)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params:,} parameters (vision {sum(p.numel() for p in model.visual.parameters()):,}, "
          f"text {n_params - sum(p.numel() for p in model.visual.parameters()):,} with the logit scale)", flush=True)

    logit_params = [model.logit_scale] + ([] if clip else [model.logit_bias])
    def decays(n: str, p) -> bool:
        return p.ndim >= 2 and "pos" not in n and "latent" not in n and "class_embedding" not in n
    decay = [p for n, p in model.named_parameters() if decays(n, p)]
    no_decay = [p for n, p in model.named_parameters() if not decays(n, p) and p.ndim > 0]
    opt = torch.optim.AdamW([
        {"params": decay, "weight_decay": args.weight_decay, "lr_mult": 1.0},
        {"params": no_decay, "weight_decay": 0.0, "lr_mult": 1.0},
        {"params": logit_params, "weight_decay": 0.0, "lr_mult": 10.0},
    ], lr=args.lr, betas=(0.9, 0.98), eps=1e-6)

    def lr_at(step: int) -> float:
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        t = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))

    history = []
    order: list[int] = []
    model.train()
    t_train = time.time()
    run_loss, run_n = 0.0, 0
    for step in range(1, args.steps + 1):
        if len(order) < args.batch:
            perm = list(range(len(xs)))
            rng.shuffle(perm)
            order += perm
        idx, order = order[: args.batch], order[args.batch:]
        batch = to_input(xs[idx])
        flip = torch.rand(len(idx)) < 0.5
        batch[flip] = batch[flip].flip(-1)
        caps = [captions.caption(tags[i], rng) for i in idx]
        labels = labels_for([r for _, r in caps], [tagsets[i] for i in idx]) > 0
        text = enc([c for c, _ in caps])

        lr = lr_at(step - 1)
        for g in opt.param_groups:
            g["lr"] = lr * g["lr_mult"]
        img = model.encode_image(batch, normalize=True)
        txt = model.encode_text(text, normalize=True)
        loss = contrastive_loss(img, txt, labels, model)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        run_loss += loss.item()
        run_n += 1

        if step % 100 == 0 or step == early or step == args.steps:
            p = probe(model, enc, vx, vtags, random.Random(step))
            rec = {"step": step, "train_loss": run_loss / run_n, "lr": lr,
                   "scale": model.logit_scale.exp().item(),
                   "bias": 0.0 if clip else model.logit_bias.item(),
                   "elapsed_s": round(time.time() - t_train, 1), **p}
            run_loss, run_n = 0.0, 0
            history.append(rec)
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()), flush=True)
        if step in ((args.steps,) if clip else (early, args.steps)):
            name = "clip-a" if clip else "checkpoint-a" if step == early else "checkpoint-b"
            meta = {"fitcheck_lookbook": {"step": step, "of_steps": args.steps, "batch": args.batch,
                                          "lr": args.lr, "seed": args.seed, "n_train_images": args.n_train}}
            (C if clip else T).save_checkpoint(model, tokenizer, args.out / name, extra_config=meta)
            print(f"saved {name} at step {step}", flush=True)

    total = time.time() - t0
    print(f"done: {args.steps} steps in {time.time() - t_train:.0f} s of training, {total:.0f} s in all", flush=True)
    print(json.dumps({"final": history[-1], "early": next(h for h in history if h["step"] == early)}))


if __name__ == "__main__":
    main()
