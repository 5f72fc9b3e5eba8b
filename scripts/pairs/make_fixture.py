"""Writes tests/fixtures/pairs/tiny/: a small pairs file for the fidelity checkpoints (tests/fixtures/siglip/).

    .venv/bin/python scripts/pairs/make_fixture.py

The lookbook models read 16 tokens and know only their captions' words, so their pairs file has no tags.
This fixture is for `tiny-b` (context 24, a sentencepiece vocabulary of Spanish fashion words), where the
team's ". Etiquetas: <tags>" suffix and padding to each batch's longest text really change the inputs:
descriptions of 2 to 7 words, most rows with tags (one description already ends with a period, some tag
lists have stray spaces and empty entries), a few repeated texts, two rows long enough to be cut at the
context (in the second batch of each split), and the two splits interleaved in the file so that "file order" means order within a split.
43 pairs: 24 train (batches of 16 + 8), 19 test (16 + 3). Images are 48 x 48 PNGs (tiny-b's size) of
random colour blocks, so they need no resampling.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "pairs" / "tiny"
SEED = 4242

PRENDAS = ["vestido", "falda", "camisa", "camiseta", "pantalón", "chaqueta", "abrigo", "jersey", "blusa", "shorts"]
COLORES = ["rojo", "azul", "verde", "negro", "blanco", "amarillo", "rosa", "gris", "beige", "marrón"]
ADJ = ["largo", "corto", "ajustado", "holgado", "estampado", "liso", "floral", "vintage", "elegante", "casual"]
TAGS = ["algodón", "lino", "seda", "lana", "denim", "verano", "invierno", "fiesta", "oficina", "playa", "rebajas"]
LONG = ("vestido largo de fiesta rojo con escote y manga larga de encaje, cintura alta y falda plisada "
        "para boda de noche en invierno")


def description(rng: random.Random) -> str:
    words = [rng.choice(PRENDAS), rng.choice(COLORES)] + rng.sample(ADJ, rng.randint(0, 5))
    return " ".join(words)


def tags(rng: random.Random) -> str:
    if rng.random() < 0.25:
        return ""
    return ",".join(rng.sample(TAGS, rng.randint(1, 3)))


def main() -> None:
    rng = random.Random(SEED)
    nrng = np.random.default_rng(SEED)
    rows = []
    for split, n in (("train", 24), ("test", 19)):
        for k in range(n):
            rows.append({"image": f"images/{split}-{k:02d}.png", "description": description(rng),
                         "tags": tags(rng), "split": split})
    # texts that repeat another row's exactly (description and tags), in the same split
    rows[5]["description"], rows[5]["tags"] = rows[2]["description"], rows[2]["tags"]
    rows[18]["description"], rows[18]["tags"] = rows[2]["description"], rows[2]["tags"]  # other batch
    rows[30]["description"], rows[30]["tags"] = rows[27]["description"], rows[27]["tags"]
    rows[7]["description"] = "camisa blanca de lino."  # already ends with a period
    rows[7]["tags"] = " lino , verano,, oficina "  # stray spaces and an empty entry
    # cut at the context, in the splits' second batches so that the first ones stay shorter
    rows[20]["description"], rows[20]["tags"] = LONG, "seda,fiesta,invierno"
    rows[41]["description"], rows[41]["tags"] = LONG, "encaje, noche"
    rows[14]["tags"] = ""
    # interleave the splits, keeping each split's own order
    train = [r for r in rows if r["split"] == "train"]
    test = [r for r in rows if r["split"] == "test"]
    mixed = []
    while train or test:
        for part, take in ((train, rng.randint(1, 3)), (test, rng.randint(1, 2))):
            mixed += part[:take]
            del part[:take]

    (OUT / "images").mkdir(parents=True, exist_ok=True)
    for p in (OUT / "images").glob("*.png"):
        p.unlink()
    for r in rows:
        blocks = nrng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
        img = Image.fromarray(blocks).resize((48, 48), Image.NEAREST)
        img.save(OUT / r["image"], optimize=True)
    with open(OUT / "pairs.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["image", "description", "tags", "split"], lineterminator="\n")
        w.writeheader()
        w.writerows(mixed)
    print(f"wrote {len(mixed)} pairs to {OUT / 'pairs.csv'}")


if __name__ == "__main__":
    main()
