"""Spanish captions for garment tags, and the words a query may use.

`caption(tags, rng)` writes one short shop-style description of a garment ("jeans wide leg azules con
roturas", "remera roja de manga corta", "campera de cuero negra") and returns it with the set of tags the
caption asserts. During training a caption counts as a positive for every image whose tags include that
set, so "remera roja" is right for all red remeras in a batch, not only the one it was written for.

Adjectives agree with the noun (roja / rojo, estampada, rotos); synonyms and the order and number of
attributes are drawn at random, so the model learns words rather than templates.
"""

from __future__ import annotations

import random

# noun forms: (text, gender, plural)
NOUNS = {
    "remera": [("remera", "f", False), ("camiseta", "f", False), ("remerita", "f", False)],
    "camisa": [("camisa", "f", False), ("camisa", "f", False), ("camisa abotonada", "f", False)],
    "sweater": [("sweater", "m", False), ("suéter", "m", False), ("pulóver", "m", False), ("buzo tejido", "m", False)],
    "vestido": [("vestido", "m", False)],
    "campera": [("campera", "f", False), ("campera", "f", False), ("chaqueta", "f", False)],
    "pollera": [("pollera", "f", False), ("falda", "f", False)],
    "short": [("short", "m", False), ("shorts", "m", True)],
    "jean": [("jean", "m", False), ("jeans", "m", True), ("pantalón de jean", "m", False), ("vaquero", "m", False)],
}
GENERIC = [("prenda", "f", False), ("ropa", "f", False)]

# colour adjectives: masculine singular form; the rest is derived
COLOR_WORDS = {
    "rojo": ["rojo"],
    "rosa": ["rosa", "rosado"],
    "celeste": ["celeste"],
    "azul": ["azul"],
    "negro": ["negro"],
    "blanco": ["blanco"],
    "verde": ["verde"],
    "amarillo": ["amarillo"],
    "beige": ["beige"],
}
INVARIANT = {"rosa", "beige"}


def adj(word: str, gender: str, plural: bool) -> str:
    """Agrees a masculine-singular Spanish adjective with a noun."""
    if word in INVARIANT:
        return word
    if word.endswith("o"):
        word = word[:-1] + ("a" if gender == "f" else "o")
        return word + "s" if plural else word
    if plural:
        return word + ("es" if word[-1] in "lrnz" else "s")
    return word


CUT_WORDS = {
    "wide-leg": ["wide leg", "wide leg", "de pierna ancha"],
    "skinny": ["skinny", "skinny", "chupín"],
    "recto": ["recto*", "de corte recto", "recto*"],
    "palazzo": ["palazzo"],
    "cargo": ["cargo", "cargo", "con bolsillos cargo"],
    "mom": ["mom", "mom fit", "mom"],
    "acampanado": ["acampanado*", "oxford", "flare", "acampanado*"],
}
RIP_WORDS = {"roturas": ["con roturas", "con roturas", "roto*", "rasgado*", "destroyed"],
             "sin-roturas": ["sin roturas", "sin roturas", "sin rotura"]}
PATTERN_WORDS = {
    "liso": ["liso*"],
    "estampado": ["estampado*", "con estampado", "estampado*"],
    "lunares": ["a lunares", "con lunares", "de lunares", "con puntos"],
    "rayas": ["a rayas", "rayado*", "con rayas", "de rayas"],
    "flores": ["floreado*", "con flores", "de flores", "floral"],
}
SLEEVE_WORDS = {"manga-corta": ["manga corta", "de manga corta", "manga corta"],
                "manga-larga": ["manga larga", "de manga larga", "manga larga"],
                "sin-mangas": ["sin mangas", "sin mangas", "musculosa"]}
MATERIAL_WORDS = {"cuero": ["de cuero", "de cuero", "de cuerina", "símil cuero"],
                  "denim": ["de jean", "de jean", "de denim", "denim"],
                  "acolchada": ["acolchado*", "inflable", "puffer", "acolchado*"]}

EXTRA_WORDS = ["un", "una", "unos", "foto", "de", "con", "sin", "a", "y", "para", "mujer", "color"]


def _phrase(p: str, gender: str, plural: bool) -> str:
    """Expands 'roto*' style entries into the agreed adjective."""
    return " ".join(adj(w[:-1], gender, plural) if w.endswith("*") else w for w in p.split())


def caption(tags: list[str], rng: random.Random) -> tuple[str, frozenset[str]]:
    """One random Spanish caption for an item with `tags`, and the tags it asserts."""
    t = set(tags)
    prenda = tags[0]
    if rng.random() < 0.06:
        noun, gender, plural = rng.choice(GENERIC)
        req: set[str] = set()
    else:
        noun, gender, plural = rng.choice(NOUNS[prenda])
        req = {prenda}
    attrs: list[tuple[str, str]] = []  # (text, tag)
    color = next(c for c in COLOR_WORDS if c in t)
    if rng.random() < (0.75 if req else 1.0):
        attrs.append((adj(rng.choice(COLOR_WORDS[color]), gender, plural), color))
    for tag, words, p in (
        [(c, CUT_WORDS[c], 0.75) for c in CUT_WORDS if c in t]
        + [(r, RIP_WORDS[r], 0.5) for r in RIP_WORDS if r in t]
        + [(s, SLEEVE_WORDS[s], 0.45) for s in SLEEVE_WORDS if s in t and prenda != "campera"]
        + [(m, MATERIAL_WORDS[m], 0.7) for m in MATERIAL_WORDS if m in t and prenda != "jean"]
    ):
        if rng.random() < p:
            attrs.append((_phrase(rng.choice(words), gender, plural), tag))
    if "liso" in t and rng.random() < 0.35:
        attrs.append((_phrase(rng.choice(PATTERN_WORDS["liso"]), gender, plural), "liso"))
    if "estampado" in t and rng.random() < 0.65:
        kind = next(k for k in ("lunares", "rayas", "flores") if k in t)
        tag = kind if rng.random() < 0.6 else "estampado"
        attrs.append((_phrase(rng.choice(PATTERN_WORDS[tag]), gender, plural), tag))
    if not req and not attrs:
        attrs.append((adj(color, gender, plural), color))
    rng.shuffle(attrs)
    # material phrases read best right after the noun
    attrs.sort(key=lambda a: 0 if a[1] in MATERIAL_WORDS else 1)
    words = [noun] + [a for a, _ in attrs]
    if rng.random() < 0.12:
        words.insert(0, ("unos" if plural else "una" if gender == "f" else "un"))
    req |= {tag for _, tag in attrs}
    return " ".join(words), frozenset(req)


def vocabulary() -> list[str]:
    """Every word a caption can contain (before cleaning)."""
    words: set[str] = set(EXTRA_WORDS)
    forms = [(g, p) for g in "mf" for p in (False, True)]
    for nouns in list(NOUNS.values()) + [GENERIC]:
        for n, _, _ in nouns:
            words.update(n.split())
    for table in (CUT_WORDS, RIP_WORDS, PATTERN_WORDS, SLEEVE_WORDS, MATERIAL_WORDS):
        for phrases in table.values():
            for p in phrases:
                for g, pl in forms:
                    words.update(_phrase(p, g, pl).split())
    for cs in COLOR_WORDS.values():
        for c in cs:
            for g, pl in forms:
                words.add(adj(c, g, pl))
    return sorted(words)
