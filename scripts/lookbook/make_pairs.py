"""Writes the lookbook's pairs file: lookbook/pairs/pairs.csv and its images, for fitcheck's pair mode.

    .venv/bin/python scripts/lookbook/make_pairs.py

Two splits of (image, description) pairs, as a team keeps for a checkpoint table:

- train: the first N images of the lookbook training set, drawn exactly as `train.py` draws it (same seed,
  same generator), each with the caption it was given the first time it entered a training batch. The
  script replays `train.py`'s random stream (the caption-length check, the epoch shuffles, one caption per
  batch item) without training anything, so these are pairs both checkpoints were trained on.
- test: N garments drawn with a seed `train.py` never uses, captioned by the same generator: held out.

Images are stored as the model saw them in training: converted to RGB and squashed to 64 x 64 with PIL's
bicubic filter (after the JPEG round trip `train.py` applies to 40% of them), as lossless PNG, so reading
them back needs no further resampling. The tags column is left empty: the lookbook tokenizer knows only
caption words and reads 16 tokens, so a ". Etiquetas: ..." suffix would be spelled out letter by letter
and cut off.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import captions  # noqa: E402
import garments  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "lookbook" / "pairs"
TRAIN_SEED = 20261127  # train.py's default --seed
N_TRAIN_IMAGES = 6000  # train.py's default --n-train
BATCH = 128  # train.py's default --batch
TEST_SEED = TRAIN_SEED + 1000  # train.py draws with seed, seed + 1 and seed + 2 only
SIZE = 64  # the lookbook models' image size


def draw_set(n: int, seed: int) -> list[tuple[garments.Spec, Image.Image]]:
    """The first n garments of train.py's render_set(n_any, seed), before the final resize."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        spec = garments.random_spec(rng)
        img = garments.draw(spec, rng)
        if rng.random() < 0.4:
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=rng.randint(80, 95))
            img = Image.open(io.BytesIO(buf.getvalue()))
        out.append((spec, img.convert("RGB").resize((SIZE, SIZE), Image.BICUBIC)))
    return out


def first_training_captions(tags: list[list[str]], wanted: int) -> list[str]:
    """The caption each of the first `wanted` training images got on its first training step.

    Replays train.py's `rng = random.Random(seed)`: 2000 captions for the length check, then per step an
    epoch shuffle when the queue runs short and one caption per batch item, in batch order."""
    rng = random.Random(TRAIN_SEED)
    for t in tags[:2000]:
        captions.caption(t, rng)
    first: dict[int, str] = {}
    order: list[int] = []
    while len(first) < wanted:
        if len(order) < BATCH:
            perm = list(range(len(tags)))
            rng.shuffle(perm)
            order += perm
        idx, order = order[:BATCH], order[BATCH:]
        for i in idx:
            text, _ = captions.caption(tags[i], rng)
            if i < wanted and i not in first:
                first[i] = text
    return [first[i] for i in range(wanted)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=96, help="pairs per split")
    args = ap.parse_args()

    print(f"drawing the {N_TRAIN_IMAGES} training garments (only their tags are kept beyond the first {args.n})")
    rng = random.Random(TRAIN_SEED + 1)  # train.py: render_set(args.n_train, args.seed + 1)
    train_tags, train_imgs = [], []
    for i in range(N_TRAIN_IMAGES):
        spec = garments.random_spec(rng)
        img = garments.draw(spec, rng)
        if rng.random() < 0.4:
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=rng.randint(80, 95))
            img = Image.open(io.BytesIO(buf.getvalue()))
        if i < args.n:
            train_imgs.append((spec, img.convert("RGB").resize((SIZE, SIZE), Image.BICUBIC)))
        train_tags.append(spec.tags())
    train_caps = first_training_captions(train_tags, args.n)

    test = draw_set(args.n, TEST_SEED)
    cap_rng = random.Random(TEST_SEED + 1)
    test_caps = [captions.caption(spec.tags(), cap_rng)[0] for spec, _ in test]

    if OUT.exists():
        for p in sorted(OUT.glob("*/*.png")):
            p.unlink()
    rows = []
    for split, items, caps in (("train", train_imgs, train_caps), ("test", test, test_caps)):
        (OUT / split).mkdir(parents=True, exist_ok=True)
        for k, ((spec, img), cap) in enumerate(zip(items, caps)):
            rel = f"{split}/{k:03d}-{spec.stem()}.png"
            img.save(OUT / rel, optimize=True)
            rows.append({"image": rel, "description": cap, "tags": "", "split": split})
    with open(OUT / "pairs.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["image", "description", "tags", "split"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    dup = {s: sum(1 for i, r in enumerate(rows) if r["split"] == s
                  and any(q["split"] == s and q["description"] == r["description"] for q in rows[:i]))
           for s in ("train", "test")}
    print(f"wrote {len(rows)} pairs to {OUT / 'pairs.csv'}; repeated descriptions: {dup}")


if __name__ == "__main__":
    main()
