"""Draws the lookbook catalog: lookbook/catalog/<prenda>/<id>.png|jpg and lookbook/catalog/manifest.toml.

    .venv/bin/python scripts/lookbook/make_catalog.py

The catalog is what the example suite ranks. Its make-up is planned rather than left to chance, so that every
case in cases/ has a handful of right answers and a few look-alikes: six jeans of each cut (three with rips),
enough of each colour per garment, and a few pinned combinations (red printed dresses, black leather jackets,
light-blue shirts next to light-blue tees). Everything else is drawn at random from a fixed seed, so the
script always writes the same files.
"""

from __future__ import annotations

import random
import shutil
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from garments import COLORES, CORTES, ESTAMPADOS, Spec, draw  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "lookbook" / "catalog"
SEED = 7

# How many of each garment, and pinned items (prenda, attributes) that the cases rely on.
QUOTA = {"remera": 34, "camisa": 22, "sweater": 18, "vestido": 28, "campera": 18, "pollera": 22, "short": 22}
PINNED = [
    ("remera", dict(color="celeste", estampado=None, mangas="corta")),
    ("remera", dict(color="celeste", estampado=None, mangas="corta")),
    ("remera", dict(color="celeste", estampado=None, mangas="larga")),
    ("remera", dict(color="celeste", estampado="rayas", mangas="corta")),
    ("camisa", dict(color="celeste", estampado=None, mangas="larga")),
    ("camisa", dict(color="celeste", estampado=None, mangas="larga")),
    ("camisa", dict(color="celeste", estampado=None, mangas="corta")),
    ("camisa", dict(color="blanco", estampado=None, mangas="larga")),
    ("camisa", dict(color="blanco", estampado=None, mangas="larga")),
    ("camisa", dict(color="blanco", estampado=None, mangas="larga")),
    ("remera", dict(color="negro", estampado="lunares", mangas="corta")),
    ("remera", dict(color="negro", estampado="lunares", mangas="corta")),
    ("remera", dict(color="negro", estampado="lunares", mangas="larga")),
    ("vestido", dict(color="rojo", estampado="lunares", mangas="sin")),
    ("vestido", dict(color="rojo", estampado="flores", mangas="corta")),
    ("vestido", dict(color="rojo", estampado="rayas", mangas="larga")),
    ("vestido", dict(color="rojo", estampado="lunares", mangas="corta")),
    ("vestido", dict(color="rojo", estampado=None, mangas="sin")),
    ("vestido", dict(color="negro", estampado="flores", mangas="sin")),
    ("vestido", dict(color="amarillo", estampado="flores", mangas="corta")),
    ("vestido", dict(color="blanco", estampado="flores", mangas="larga")),
    ("pollera", dict(color="amarillo", estampado=None)),
    ("pollera", dict(color="amarillo", estampado=None)),
    ("pollera", dict(color="amarillo", estampado=None)),
    ("pollera", dict(color="rosa", estampado="flores")),
    ("pollera", dict(color="blanco", estampado="flores")),
    ("short", dict(color="azul", material="denim", estampado=None)),
    ("short", dict(color="celeste", material="denim", estampado=None)),
    ("short", dict(color="celeste", material="denim", estampado=None)),
    ("short", dict(color="negro", material="denim", estampado=None)),
    ("short", dict(color="azul", material="denim", estampado=None)),
    ("short", dict(color="blanco", material="denim", estampado=None)),
    ("sweater", dict(color="verde", estampado=None)),
    ("sweater", dict(color="verde", estampado=None)),
    ("sweater", dict(color="verde", estampado="rayas")),
    ("sweater", dict(color="beige", estampado=None)),
    ("sweater", dict(color="beige", estampado=None)),
    ("sweater", dict(color="beige", estampado="lunares")),
]
# camperas: six of each material, colours chosen per material
CAMPERAS = {
    "cuero": ["negro", "negro", "negro", "negro", "beige", "rojo"],
    "denim": ["azul", "azul", "azul", "celeste", "celeste", "negro"],
    "acolchada": ["negro", "rojo", "verde", "amarillo", "beige", "rosa"],
}
# jeans: six per cut; colours per cut (the last one cycles), three of the six with rips
JEAN_COLORS = ["azul", "azul", "celeste", "negro", "blanco"]
JEAN_EXTRA = ["beige", "rosa", "celeste", "negro", "verde", "azul", "rojo"]


def plan(rng: random.Random) -> list[Spec]:
    specs: list[Spec] = []
    for i, corte in enumerate(CORTES):
        colors = JEAN_COLORS + [JEAN_EXTRA[i]]
        rips = [True] * 3 + [False] * 3
        rng.shuffle(rips)
        for c, r in zip(colors, rips):
            specs.append(Spec("jean", c, corte=corte, roturas=r, material="denim"))
    for material, colors in CAMPERAS.items():
        for c in colors:
            specs.append(Spec("campera", c, mangas="larga", material=material))
    for prenda, quota in QUOTA.items():
        if prenda == "campera":
            continue
        pinned = [Spec(**_defaults(prenda), **{**kw}) for p, kw in PINNED if p == prenda]
        n_free = quota - len(pinned)
        # colours balanced over the free slots, patterns about one in three
        colors = (COLORES * (n_free // len(COLORES) + 1))[:n_free]
        rng.shuffle(colors)
        free = []
        for k, c in enumerate(colors):
            est = ESTAMPADOS[k % 3] if rng.random() < 0.33 else None
            kw = dict(_defaults(prenda), color=c, estampado=est)
            if prenda in ("remera", "camisa"):
                kw["mangas"] = rng.choice(["corta", "corta", "larga"])
            elif prenda == "vestido":
                kw["mangas"] = rng.choice(["corta", "larga", "sin"])
            if prenda == "short" and c in ("azul", "celeste") and est is None and rng.random() < 0.5:
                kw["material"] = "denim"
            free.append(Spec(**kw))
        specs += pinned + free
    return specs


def _defaults(prenda: str) -> dict:
    d: dict = {"prenda": prenda}
    if prenda == "sweater":
        d["mangas"] = "larga"
    return d


def main() -> None:
    rng = random.Random(SEED)
    specs = plan(rng)
    if OUT.exists():
        for sub in OUT.iterdir():
            if sub.is_dir():
                shutil.rmtree(sub)
    counters: Counter = Counter()
    items: list[tuple[str, list[str]]] = []
    for spec in specs:
        counters[spec.stem()] += 1
        item_id = f"{spec.prenda}/{spec.stem()}-{counters[spec.stem()]:02d}"
        img = draw(spec, rng)
        path = OUT / f"{item_id}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if rng.random() < 0.4:
            img.save(path.with_suffix(".jpg"), "JPEG", quality=rng.randint(85, 95))
        else:
            img.save(path.with_suffix(".png"), optimize=True)
        items.append((item_id, spec.tags()))
    items.sort()
    lines = ["# tags per catalog item (id = image path relative to this folder, without extension)", "[items]"]
    for item_id, tags in items:
        lines.append(f'"{item_id}" = [' + ", ".join(f'"{t}"' for t in tags) + "]")
    (OUT / "manifest.toml").write_text("\n".join(lines) + "\n")
    by_type = Counter(i.split("/")[0] for i, _ in items)
    print(f"{len(items)} items: " + ", ".join(f"{k} {v}" for k, v in sorted(by_type.items())))


if __name__ == "__main__":
    main()
