"""Synthetic garment "product photos", drawn with PIL.

One garment per image, centred on a plain light background, the way a shop photographs a flat-lay:
remera, camisa, sweater, vestido, campera (cuero, denim, acolchada), pollera, short and jean in seven
cuts. Each drawing is fully described by a `Spec`; `Spec.tags()` gives the catalog tags and `draw()`
renders it with small random changes of rotation, scale, position, shade and background.

Both the committed catalog (`make_catalog.py`) and the training set (`train.py`) come from this module,
with different seeds, so the models are trained on the same kind of picture they are tested on but never
on the catalog images themselves.

Geometry is written in unit coordinates: (0, 0) is the top-left and (1, 1) the bottom-right of the
largest centred square, y grows downwards, x = 0.5 is the garment's axis.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter

PRENDAS = ["remera", "camisa", "sweater", "vestido", "campera", "pollera", "short", "jean"]
COLORES = ["rojo", "rosa", "celeste", "azul", "negro", "blanco", "verde", "amarillo", "beige"]
CORTES = ["wide-leg", "skinny", "recto", "palazzo", "cargo", "mom", "acampanado"]
ESTAMPADOS = ["lunares", "rayas", "flores"]
MANGAS = {"corta": "manga-corta", "larga": "manga-larga", "sin": "sin-mangas"}

# Base colours of plain fabric.
RGB = {
    "rojo": (196, 32, 40),
    "rosa": (238, 148, 182),
    "celeste": (132, 192, 234),
    "azul": (34, 58, 148),
    "negro": (32, 32, 36),
    "blanco": (246, 246, 243),
    "verde": (36, 138, 68),
    "amarillo": (244, 204, 42),
    "beige": (214, 190, 150),
}
# Denim washes: the same colour names, the look of dyed cotton twill.
RGB_DENIM = {
    "azul": (44, 72, 128),
    "celeste": (128, 166, 204),
    "negro": (44, 44, 52),
    "blanco": (238, 238, 232),
    "beige": (206, 188, 152),
    "rosa": (226, 158, 176),
    "verde": (92, 128, 96),
    "rojo": (170, 52, 56),
    "amarillo": (228, 200, 100),
}
SKIN = (226, 190, 164)
DARK = {"negro", "azul", "rojo", "verde"}

# Jean cuts: leg width at thigh (y 0.42), knee (y 0.64) and hem; centre offset of each leg at those heights;
# waist height and hem height. Widths are whole-leg widths in unit coordinates.
CUT_GEOMETRY = {
    "skinny": dict(w=(0.125, 0.082, 0.072), c=(0.075, 0.072, 0.07), waist=0.10, hem=0.93),
    "recto": dict(w=(0.15, 0.132, 0.132), c=(0.085, 0.088, 0.09), waist=0.10, hem=0.93),
    "mom": dict(w=(0.168, 0.132, 0.112), c=(0.088, 0.085, 0.082), waist=0.06, hem=0.85),
    "cargo": dict(w=(0.165, 0.155, 0.145), c=(0.088, 0.094, 0.098), waist=0.10, hem=0.93),
    "wide-leg": dict(w=(0.175, 0.195, 0.225), c=(0.09, 0.105, 0.12), waist=0.10, hem=0.93),
    "palazzo": dict(w=(0.205, 0.25, 0.295), c=(0.105, 0.13, 0.152), waist=0.06, hem=0.95),
    "acampanado": dict(w=(0.14, 0.092, 0.225), c=(0.08, 0.078, 0.12), waist=0.10, hem=0.93),
}


@dataclass(frozen=True)
class Spec:
    """Everything that a drawing shows and its tags say."""

    prenda: str
    color: str
    estampado: str | None = None  # None = liso; else one of ESTAMPADOS
    mangas: str | None = None  # "corta" | "larga" | "sin" | None (garments without sleeves)
    corte: str | None = None  # jean cut
    roturas: bool = False  # jeans only
    material: str | None = None  # "cuero" | "denim" | "acolchada" | None

    def tags(self) -> list[str]:
        t = [self.prenda]
        if self.corte:
            t.append(self.corte)
        if self.material:
            t.append(self.material)
        t.append(self.color)
        if self.prenda == "jean":
            t.append("roturas" if self.roturas else "sin-roturas")
        if self.estampado:
            t += ["estampado", self.estampado]
        else:
            t.append("liso")
        if self.mangas:
            t.append(MANGAS[self.mangas])
        return t

    def stem(self) -> str:
        """The descriptive part of the file name (a counter is appended by the caller)."""
        parts = [self.prenda]
        if self.corte:
            parts.append(self.corte)
        if self.material and self.prenda != "jean":
            parts.append(self.material)
        parts.append(self.color)
        if self.prenda != "jean":
            parts.append(self.estampado or "liso")
        if self.mangas:
            parts.append({"corta": "mc", "larga": "ml", "sin": "sm"}[self.mangas])
        if self.roturas:
            parts.append("roto")
        return "-".join(parts)


def random_spec(rng: random.Random) -> Spec:
    """A random garment, with the proportions of a small shop (jeans over-represented)."""
    prenda = rng.choices(PRENDAS, weights=[14, 11, 8, 11, 12, 8, 8, 28])[0]
    return spec_for(prenda, rng)


def spec_for(prenda: str, rng: random.Random, **fixed) -> Spec:
    """A random garment of the given type; keyword arguments pin attributes."""
    est = rng.choice(ESTAMPADOS) if rng.random() < 0.35 else None
    color = rng.choice(COLORES)
    kw: dict = dict(prenda=prenda, color=color, estampado=est)
    if prenda in ("remera", "camisa"):
        kw["mangas"] = rng.choice(["corta", "larga"])
    elif prenda == "sweater":
        kw["mangas"] = "larga"
    elif prenda == "vestido":
        kw["mangas"] = rng.choice(["corta", "larga", "sin"])
    elif prenda == "campera":
        kw["mangas"] = "larga"
        kw["material"] = rng.choice(["cuero", "denim", "acolchada"])
        kw["estampado"] = None
        if kw["material"] == "cuero":
            kw["color"] = rng.choice(["negro", "negro", "beige", "rojo", "blanco"])
        elif kw["material"] == "denim":
            kw["color"] = rng.choice(["azul", "azul", "celeste", "negro", "blanco"])
    elif prenda == "short":
        if rng.random() < 0.4:
            kw["material"] = "denim"
            kw["estampado"] = None
            kw["color"] = rng.choice(["azul", "celeste", "negro", "blanco"])
    elif prenda == "jean":
        kw["corte"] = rng.choice(CORTES)
        kw["material"] = "denim"
        kw["estampado"] = None
        kw["roturas"] = rng.random() < 0.45
        kw["color"] = rng.choices(
            ["azul", "celeste", "negro", "blanco", "beige", "rosa", "verde", "rojo", "amarillo"],
            weights=[30, 22, 16, 10, 6, 4, 4, 4, 4],
        )[0]
    kw.update(fixed)
    return Spec(**kw)


# ----------------------------------------------------------------------------------------------------
# Drawing


def _shade(c, f):
    return tuple(max(0, min(255, int(round(v * f)))) for v in c)


def _mix(a, b, t):
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


def _contrast(color: str):
    """A print colour that stands out on the base colour."""
    if color in ("blanco", "amarillo", "beige", "celeste", "rosa"):
        return {"blanco": (30, 30, 60), "amarillo": (40, 40, 40), "beige": (120, 80, 50),
                "celeste": (250, 250, 250), "rosa": (250, 250, 250)}[color]
    return (248, 246, 240)


class Pen:
    """Maps unit coordinates to the (supersampled) canvas with one rotation, scale and shift."""

    def __init__(self, w: int, h: int, ss: int, rng: random.Random):
        self.w, self.h = w * ss, h * ss
        self.s = rng.uniform(0.8, 1.0) * min(w, h) * ss
        a = math.radians(rng.uniform(-6, 6))
        self.cos, self.sin = math.cos(a), math.sin(a)
        self.cx = self.w / 2 + rng.uniform(-6, 6) * ss
        self.cy = self.h / 2 + rng.uniform(-6, 6) * ss

    def p(self, u: float, v: float):
        x, y = (u - 0.5) * self.s, (v - 0.5) * self.s
        return (self.cx + x * self.cos - y * self.sin, self.cy + x * self.sin + y * self.cos)

    def pts(self, pts):
        return [self.p(u, v) for u, v in pts]

    def px(self, d: float) -> int:
        return max(1, int(round(d * self.s)))


def _ellipse_pts(u, v, ru, rv, n=14):
    return [(u + ru * math.cos(2 * math.pi * i / n), v + rv * math.sin(2 * math.pi * i / n)) for i in range(n)]


def _mirror(pts):
    return [(1.0 - u, v) for u, v in pts]


# --- silhouettes: each returns a list of polygons (unit coordinates) -----------------------------------


def _top_parts(spec: Spec, rng: random.Random):
    """Body and sleeves of remera / camisa / sweater / campera."""
    bw = {"remera": 0.155, "camisa": 0.16, "sweater": 0.175, "campera": 0.185}[spec.prenda]
    hem = {"remera": 0.78, "camisa": 0.80, "sweater": 0.77, "campera": 0.77}[spec.prenda]
    nw = 0.062 if spec.prenda != "campera" else 0.07
    sy = 0.2  # shoulder line
    sx = 0.5 - bw - 0.012
    body = [(0.5 - nw, sy - 0.025), (sx, sy), (0.5 - bw, sy + 0.16), (0.5 - bw, hem),
            (0.5 + bw, hem), (0.5 + bw, sy + 0.16), (1 - sx, sy), (0.5 + nw, sy - 0.025)]
    if spec.prenda == "camisa":  # shirt tail: curved hem
        body = body[:3] + [(0.5 - bw, hem - 0.03), (0.5 - bw * 0.6, hem), (0.5 + bw * 0.6, hem),
                           (0.5 + bw, hem - 0.03)] + body[5:]
    if spec.mangas == "corta":
        sleeve = [(sx + 0.01, sy - 0.004), (sx - 0.125, sy + 0.115), (sx - 0.068, sy + 0.19), (sx + 0.014, sy + 0.13)]
    else:
        puff = 0.015 if spec.prenda in ("sweater", "campera") else 0.0
        sleeve = [(sx + 0.01, sy - 0.004), (sx - 0.09 - puff, sy + 0.18), (sx - 0.115 - puff, hem - 0.03),
                  (sx - 0.04 + puff * 0.3, hem - 0.03), (sx - 0.022, sy + 0.26), (sx + 0.014, sy + 0.16)]
    return [sleeve, _mirror(sleeve), body], dict(bw=bw, hem=hem, nw=nw, sy=sy, sx=sx)


def _dress_parts(spec: Spec, rng: random.Random):
    sy, waist, hem = 0.19, 0.42, 0.92
    bw, hw = 0.115, 0.27
    nw = 0.055
    if spec.mangas == "sin":
        body = [(0.5 - nw - 0.015, sy - 0.02), (0.5 - nw - 0.035, sy - 0.02), (0.5 - bw, sy + 0.05),
                (0.5 - bw + 0.01, waist), (0.5 - hw, hem), (0.5 + hw, hem), (0.5 + bw - 0.01, waist),
                (0.5 + bw, sy + 0.05), (0.5 + nw + 0.035, sy - 0.02), (0.5 + nw + 0.015, sy - 0.02),
                (0.5, sy + 0.07)]
        return [body], dict(sy=sy, waist=waist, hem=hem, bw=bw, hw=hw, nw=nw, sx=0.5 - bw)
    sx = 0.5 - bw - 0.02
    body = [(0.5 - nw, sy - 0.02), (sx, sy), (0.5 - bw, sy + 0.13), (0.5 - bw + 0.01, waist), (0.5 - hw, hem),
            (0.5 + hw, hem), (0.5 + bw - 0.01, waist), (0.5 + bw, sy + 0.13), (1 - sx, sy), (0.5 + nw, sy - 0.02)]
    if spec.mangas == "corta":
        sleeve = [(sx + 0.01, sy - 0.004), (sx - 0.1, sy + 0.09), (sx - 0.05, sy + 0.15), (sx + 0.012, sy + 0.11)]
    else:
        sleeve = [(sx + 0.01, sy - 0.004), (sx - 0.08, sy + 0.17), (sx - 0.1, 0.66), (sx - 0.04, 0.66),
                  (sx - 0.02, sy + 0.24), (sx + 0.012, sy + 0.13)]
    return [sleeve, _mirror(sleeve), body], dict(sy=sy, waist=waist, hem=hem, bw=bw, hw=hw, nw=nw, sx=sx)


def _skirt_parts(spec: Spec, rng: random.Random):
    top, hem, ww, hw = 0.26, 0.74, 0.15, 0.25
    return [[(0.5 - ww, top), (0.5 + ww, top), (0.5 + hw, hem), (0.5 - hw, hem)]], dict(top=top, hem=hem, ww=ww, hw=hw)


def _short_parts(spec: Spec, rng: random.Random):
    top, crotch, hem, ww = 0.28, 0.5, 0.6, 0.17
    left = [(0.5 - ww, top), (0.5, top), (0.5, crotch), (0.5 - 0.015, hem), (0.5 - ww - 0.05, hem - 0.015)]
    return [left, _mirror(left)], dict(top=top, crotch=crotch, hem=hem, ww=ww)


def _leg(g, waist):
    (tw, kw, hw), (tc, kc, hc) = g["w"], g["c"]
    hem = g["hem"]
    hip_y, thigh_y, knee_y = waist + 0.14, 0.42, 0.64
    crotch = waist + 0.26
    outer = [(0.5 - 0.158, waist), (0.5 - 0.17, hip_y), (0.5 - tc - tw / 2, thigh_y), (0.5 - kc - kw / 2, knee_y),
             (0.5 - hc - hw / 2, hem)]
    inner = [(0.5 - hc + hw / 2, hem), (0.5 - kc + kw / 2, knee_y), (0.5 - tc + tw / 2, max(thigh_y, crotch + 0.03)),
             (0.5, crotch), (0.5, waist)]
    return outer + inner


def _jean_parts(spec: Spec, rng: random.Random):
    g = CUT_GEOMETRY[spec.corte]
    left = _leg(g, g["waist"])
    return [left, _mirror(left)], dict(g=g, waist=g["waist"])


# --- details ----------------------------------------------------------------------------------------


def _rib(d: ImageDraw.ImageDraw, pen: Pen, u0, u1, v0, v1, col, step=0.012):
    u = u0 + step / 2
    while u < u1:
        d.line(pen.pts([(u, v0), (u, v1)]), fill=col, width=pen.px(0.004))
        u += step


def _rip(d: ImageDraw.ImageDraw, pen: Pen, u, v, w, rng: random.Random):
    """A torn slash: skin showing through, white threads across it."""
    h = rng.uniform(0.018, 0.026)
    pts = [(u - w / 2, v), (u - w / 4, v - h / 2), (u + w / 4, v - h / 2 + 0.003), (u + w / 2, v),
           (u + w / 4, v + h / 2), (u - w / 4, v + h / 2 - 0.003)]
    d.polygon(pen.pts(pts), fill=(250, 250, 250))
    inner = [(u - w / 2 + 0.01, v), (u - w / 4, v - h / 2 + 0.004), (u + w / 4, v - h / 2 + 0.006),
             (u + w / 2 - 0.01, v), (u + w / 4, v + h / 2 - 0.004), (u - w / 4, v + h / 2 - 0.006)]
    d.polygon(pen.pts(inner), fill=SKIN)
    for k in range(2):
        vv = v + (k - 0.5) * h * 0.35
        d.line(pen.pts([(u - w / 2 + 0.008, vv), (u + w / 2 - 0.008, vv)]), fill=(252, 252, 250), width=pen.px(0.003))


def _details(d: ImageDraw.ImageDraw, pen: Pen, spec: Spec, geo: dict, base, rng: random.Random):
    line = _shade(base, 0.62) if spec.color not in ("negro",) else (90, 90, 96)
    thin = pen.px(0.005)
    contrast = (250, 250, 250) if spec.color in DARK else (40, 40, 44)
    p = spec.prenda

    if p in ("remera", "camisa", "sweater", "campera"):
        bw, hem, nw, sy, sx = geo["bw"], geo["hem"], geo["nw"], geo["sy"], geo["sx"]
        if p == "remera":
            neck = [(0.5 - nw, sy - 0.025)] + [(0.5 - nw * math.cos(t), sy - 0.025 + 0.055 * math.sin(t))
                                               for t in [i * math.pi / 8 for i in range(1, 8)]] + [(0.5 + nw, sy - 0.025)]
            d.polygon(pen.pts(neck), fill=_shade(base, 0.75))
            d.line(pen.pts(neck), fill=line, width=pen.px(0.008))
        elif p == "sweater":
            neck = [(0.5 - nw, sy - 0.025)] + [(0.5 - nw * math.cos(t), sy - 0.025 + 0.05 * math.sin(t))
                                               for t in [i * math.pi / 8 for i in range(1, 8)]] + [(0.5 + nw, sy - 0.025)]
            d.polygon(pen.pts(neck), fill=_shade(base, 0.72))
            d.line(pen.pts(neck), fill=_shade(base, 0.8), width=pen.px(0.02))
            # ribbed hem band and cuffs
            d.polygon(pen.pts([(0.5 - bw, hem - 0.07), (0.5 + bw, hem - 0.07), (0.5 + bw - 0.01, hem),
                               (0.5 - bw + 0.01, hem)]), fill=_shade(base, 0.86))
            _rib(d, pen, 0.5 - bw, 0.5 + bw, hem - 0.068, hem - 0.002, _shade(base, 0.62))
            for side in (0, 1):
                cuff = [(sx - 0.115 - 0.015, hem - 0.075), (sx - 0.04 + 0.0045, hem - 0.075),
                        (sx - 0.04 + 0.0045, hem - 0.03), (sx - 0.115 - 0.015, hem - 0.03)]
                cuff = _mirror(cuff) if side else cuff
                d.polygon(pen.pts(cuff), fill=_shade(base, 0.86))
                u0, u1 = min(c[0] for c in cuff), max(c[0] for c in cuff)
                _rib(d, pen, u0, u1, hem - 0.073, hem - 0.032, _shade(base, 0.62), step=0.011)
        elif p == "camisa":
            # placket with buttons, pointed collar, chest pocket, cuffs
            d.polygon(pen.pts([(0.5 - 0.017, sy + 0.02), (0.5 + 0.017, sy + 0.02), (0.5 + 0.017, hem - 0.005),
                               (0.5 - 0.017, hem - 0.005)]), fill=_shade(base, 0.93), outline=line)
            d.line(pen.pts([(0.5 - 0.017, sy + 0.02), (0.5 - 0.017, hem - 0.005)]), fill=line, width=pen.px(0.007))
            by = sy + 0.06
            while by < hem - 0.03:
                r = 0.012 * pen.s
                x, y = pen.p(0.5, by)
                d.ellipse([x - r, y - r, x + r, y + r], fill=contrast)
                by += 0.085
            collar_col = _mix(base, (255, 255, 255), 0.25) if spec.color != "blanco" else (225, 225, 225)
            for side in (0, 1):
                c = [(0.5 - nw - 0.01, sy - 0.03), (0.5, sy + 0.035), (0.5 - 0.012, sy + 0.075), (0.5 - nw - 0.03, sy + 0.055)]
                c = _mirror(c) if side else c
                d.polygon(pen.pts(c), fill=collar_col, outline=line)
                d.line(pen.pts(c + c[:1]), fill=line, width=pen.px(0.007))
            d.line(pen.pts([(0.5 - bw + 0.03, sy + 0.11), (0.5 - 0.05, sy + 0.11), (0.5 - 0.05, sy + 0.19),
                            (0.5 - bw + 0.03, sy + 0.19), (0.5 - bw + 0.03, sy + 0.11)]), fill=line, width=thin)
            if spec.mangas == "larga":
                for side in (0, 1):
                    cuff = [(sx - 0.115, hem - 0.075), (sx - 0.04, hem - 0.075), (sx - 0.04, hem - 0.03), (sx - 0.115, hem - 0.03)]
                    cuff = _mirror(cuff) if side else cuff
                    d.line(pen.pts(cuff + cuff[:1]), fill=line, width=thin)
        elif p == "campera":
            _campera_details(d, pen, spec, geo, base, line, rng)
        if p in ("remera", "camisa") and spec.mangas == "corta":
            for side in (0, 1):
                hemline = [(sx - 0.11, sy + 0.125), (sx - 0.055, sy + 0.2)]
                hemline = _mirror(hemline) if side else hemline
                d.line(pen.pts(hemline), fill=line, width=thin)

    elif p == "vestido":
        waist, bw = geo["waist"], geo["bw"]
        d.line(pen.pts([(0.5 - bw + 0.01, waist), (0.5 + bw - 0.01, waist)]), fill=line, width=pen.px(0.008))
        for f in (-0.12, -0.05, 0.05, 0.12):
            d.line(pen.pts([(0.5 + f * 0.3, waist + 0.03), (0.5 + f, geo["hem"] - 0.02)]), fill=_shade(base, 0.82), width=thin)
        if spec.mangas != "sin":
            nw, sy = geo["nw"], geo["sy"]
            neck = [(0.5 - nw, sy - 0.02)] + [(0.5 - nw * math.cos(t), sy - 0.02 + 0.07 * math.sin(t))
                                              for t in [i * math.pi / 8 for i in range(1, 8)]] + [(0.5 + nw, sy - 0.02)]
            d.polygon(pen.pts(neck), fill=_shade(base, 0.75))

    elif p == "pollera":
        top, hem, ww, hw = geo["top"], geo["hem"], geo["ww"], geo["hw"]
        d.polygon(pen.pts([(0.5 - ww, top), (0.5 + ww, top), (0.5 + ww + 0.004, top + 0.04), (0.5 - ww - 0.004, top + 0.04)]),
                  fill=_shade(base, 0.85), outline=line)
        for f in (-0.6, -0.2, 0.2, 0.6):
            d.line(pen.pts([(0.5 + f * ww, top + 0.05), (0.5 + f * hw, hem - 0.01)]), fill=_shade(base, 0.8), width=thin)

    elif p == "short":
        top, ww = geo["top"], geo["ww"]
        d.polygon(pen.pts([(0.5 - ww, top), (0.5 + ww, top), (0.5 + ww, top + 0.035), (0.5 - ww, top + 0.035)]),
                  fill=_shade(base, 0.85), outline=line)
        d.line(pen.pts([(0.5, top + 0.035), (0.5, geo["crotch"] - 0.02)]), fill=line, width=thin)
        if spec.material == "denim":
            stitch = (214, 150, 70)
            for side in (0, 1):
                pk = [(0.5 - ww + 0.01, top + 0.045), (0.5 - ww + 0.075, top + 0.045), (0.5 - ww + 0.01, top + 0.12)]
                pk = _mirror(pk) if side else pk
                d.line(pen.pts(pk), fill=stitch, width=thin)
                fr = [(0.5 - ww - 0.05, geo["hem"] - 0.015), (0.5 - 0.015, geo["hem"])]
                fr = _mirror(fr) if side else fr
                d.line(pen.pts(fr), fill=(245, 245, 240), width=pen.px(0.01))

    elif p == "jean":
        _jean_details(d, pen, spec, geo, base, line, rng)


def _campera_details(d, pen, spec, geo, base, line, rng):
    bw, hem, nw, sy, sx = geo["bw"], geo["hem"], geo["nw"], geo["sy"], geo["sx"]
    thin = pen.px(0.005)
    m = spec.material
    if m == "acolchada":
        v = sy + 0.06
        while v < hem - 0.02:  # quilting across body and sleeves
            d.line(pen.pts([(0.5 - bw, v), (0.5 + bw, v)]), fill=_shade(base, 0.6), width=pen.px(0.008))
            for side in (0, 1):
                seg = [(sx - 0.07 - 0.05 * (v - sy) / (hem - sy), v), (sx - 0.0, v)]
                seg = _mirror(seg) if side else seg
                d.line(pen.pts(seg), fill=_shade(base, 0.6), width=pen.px(0.007))
            v += 0.075
        d.polygon(pen.pts([(0.5 - nw, sy - 0.05), (0.5 + nw, sy - 0.05), (0.5 + nw, sy - 0.005), (0.5 - nw, sy - 0.005)]),
                  fill=_shade(base, 0.88), outline=line)
        d.line(pen.pts([(0.5, sy - 0.05), (0.5, hem)]), fill=(150, 150, 155), width=pen.px(0.008))
        for k in range(3):  # sheen
            u = 0.5 - bw + 0.04 + k * 0.1
            d.line(pen.pts([(u, sy + 0.1), (u + 0.03, sy + 0.1)]), fill=_mix(base, (255, 255, 255), 0.45), width=pen.px(0.012))
        return
    # lapels
    lap = (_shade(base, 0.8) if m == "cuero" else _shade(base, 0.9))
    for side in (0, 1):
        c = [(0.5 - nw, sy - 0.03), (0.5 - 0.01, sy + 0.1), (0.5 - 0.06, sy + 0.12), (0.5 - nw - 0.04, sy + 0.03)]
        c = _mirror(c) if side else c
        d.polygon(pen.pts(c), fill=lap)
        d.line(pen.pts(c + c[:1]), fill=line if m != "cuero" else (10, 10, 10), width=thin)
    if m == "cuero":
        # asymmetric biker zip, belt, gloss
        d.line(pen.pts([(0.5 + 0.035, sy + 0.05), (0.5 - 0.01, hem)]), fill=(190, 190, 198), width=pen.px(0.01))
        d.polygon(pen.pts([(0.5 - bw, hem - 0.045), (0.5 + bw, hem - 0.045), (0.5 + bw, hem), (0.5 - bw, hem)]),
                  fill=_shade(base, 0.75))
        gloss = _mix(base, (255, 255, 255), 0.55)
        for u, v, l in [(0.5 - bw + 0.05, sy + 0.15, 0.12), (0.5 + bw - 0.06, sy + 0.2, 0.14),
                        (sx - 0.06, sy + 0.2, 0.16), (1 - sx + 0.06, sy + 0.22, 0.16)]:
            d.line(pen.pts([(u, v), (u + 0.01, v + l)]), fill=gloss, width=pen.px(0.012))
        for side in (0, 1):
            zp = [(0.5 - bw + 0.035, sy + 0.27), (0.5 - 0.06, sy + 0.23)]
            zp = _mirror(zp) if side else zp
            d.line(pen.pts(zp), fill=(190, 190, 198), width=pen.px(0.007))
    elif m == "denim":
        stitch = (214, 150, 70)
        d.line(pen.pts([(0.5, sy + 0.1), (0.5, hem)]), fill=line, width=thin)
        for k in range(4):
            x, y = pen.p(0.5 + 0.02, sy + 0.13 + k * 0.12)
            r = 0.011 * pen.s
            d.ellipse([x - r, y - r, x + r, y + r], fill=(200, 170, 90))
        for side in (0, 1):
            yoke = [(0.5 - bw, sy + 0.09), (0.5 - 0.02, sy + 0.09)]
            flap = [(0.5 - bw + 0.03, sy + 0.11), (0.5 - 0.05, sy + 0.11), (0.5 - 0.05, sy + 0.15),
                    (0.5 - bw * 0.62, sy + 0.17), (0.5 - bw + 0.03, sy + 0.15), (0.5 - bw + 0.03, sy + 0.11)]
            band = [(0.5 - bw, hem - 0.05), (0.5 - 0.01, hem - 0.05)]
            if side:
                yoke, flap, band = _mirror(yoke), _mirror(flap), _mirror(band)
            d.line(pen.pts(yoke), fill=stitch, width=thin)
            d.line(pen.pts(flap), fill=stitch, width=thin)
            d.line(pen.pts(band), fill=stitch, width=thin)


def _jean_details(d, pen, spec, geo, base, line, rng):
    g, waist = geo["g"], geo["waist"]
    thin = pen.px(0.005)
    stitch = (214, 150, 70) if spec.color not in ("beige", "amarillo") else (150, 110, 60)
    wb = 0.035 if spec.corte not in ("mom", "palazzo") else 0.05
    d.polygon(pen.pts([(0.5 - 0.158, waist), (0.5 + 0.158, waist), (0.5 + 0.16, waist + wb), (0.5 - 0.16, waist + wb)]),
              fill=_shade(base, 0.9), outline=line)
    x, y = pen.p(0.5 + 0.015, waist + wb / 2)
    r = 0.011 * pen.s
    d.ellipse([x - r, y - r, x + r, y + r], fill=(196, 168, 96))
    for u in (0.5 - 0.13, 0.5 - 0.05, 0.5 + 0.05, 0.5 + 0.13):  # belt loops
        d.line(pen.pts([(u, waist - 0.005), (u, waist + wb + 0.005)]), fill=_shade(base, 0.7), width=pen.px(0.008))
    crotch = waist + 0.26
    d.line(pen.pts([(0.5, waist + wb), (0.5, crotch - 0.06), (0.5 + 0.04, crotch - 0.07)]), fill=stitch, width=thin)
    for side in (0, 1):
        pocket = [(0.5 - 0.15, waist + wb + 0.01), (0.5 - 0.13, waist + wb + 0.06), (0.5 - 0.095, waist + wb + 0.005)]
        tw, kw, hw = g["w"]
        tc, kc, hc = g["c"]
        seam = [(0.5 - 0.168, waist + 0.14), (0.5 - tc - tw / 2 + 0.008, 0.42), (0.5 - kc - kw / 2 + 0.008, 0.64),
                (0.5 - hc - hw / 2 + 0.01, g["hem"] - 0.005)]
        hemline = [(0.5 - hc - hw / 2 + 0.005, g["hem"] - 0.02), (0.5 - hc + hw / 2 - 0.005, g["hem"] - 0.02)]
        if side:
            pocket, seam, hemline = _mirror(pocket), _mirror(seam), _mirror(hemline)
        d.line(pen.pts(pocket), fill=stitch, width=thin)
        d.line(pen.pts(seam), fill=_shade(base, 0.72), width=thin)
        d.line(pen.pts(hemline), fill=stitch, width=thin)
        if spec.corte == "cargo":
            cu = 0.5 - tc - tw / 2 + 0.045
            pk = [(cu - 0.04, 0.45), (cu + 0.035, 0.45), (cu + 0.035, 0.57), (cu - 0.04, 0.57)]
            flap = [(cu - 0.044, 0.44), (cu + 0.039, 0.44), (cu + 0.039, 0.47), (cu - 0.044, 0.47)]
            if side:
                pk, flap = _mirror(pk), _mirror(flap)
            d.polygon(pen.pts(pk), fill=_shade(base, 0.9), outline=line)
            d.line(pen.pts(pk + pk[:1]), fill=_shade(base, 0.6), width=thin)
            d.polygon(pen.pts(flap), fill=_shade(base, 0.8))
        # whiskers: faded strokes at the hip
        for k in range(3):
            v = waist + 0.2 + k * 0.025
            wsk = [(0.5 - 0.07, v), (0.5 - 0.025, v - 0.01)]
            wsk = _mirror(wsk) if side else wsk
            d.line(pen.pts(wsk), fill=_mix(base, (255, 255, 255), 0.22), width=pen.px(0.006))
    if spec.roturas:
        legs = rng.choice([(0,), (1,), (0, 1), (0, 1)])
        for side in legs:
            n = rng.randint(2, 4)
            vs = sorted(rng.uniform(0.44, 0.76) for _ in range(n))
            for v in vs:
                tw, kw, hw = g["w"]
                tc, kc, hc = g["c"]
                t = min(1.0, max(0.0, (v - 0.42) / 0.22))
                c = tc + (kc - tc) * t
                w = tw + (kw - tw) * t
                u = 0.5 - c + rng.uniform(-0.15, 0.15) * w
                if side:
                    u = 1 - u
                _rip(d, pen, u, v, w * rng.uniform(0.5, 0.7), rng)


# --- patterns ---------------------------------------------------------------------------------------


def _pattern(fill: Image.Image, pen: Pen, spec: Spec, base, rng: random.Random):
    d = ImageDraw.Draw(fill)
    col = _contrast(spec.color)
    W, H = fill.size
    s = pen.s
    if spec.estampado == "lunares":
        step, r = 0.06 * s, 0.017 * s
        ox, oy = rng.uniform(0, step), rng.uniform(0, step)
        row = 0
        y = oy - step
        while y < H + step:
            x = ox - step + (step / 2 if row % 2 else 0)
            while x < W + step:
                d.ellipse([x - r, y - r, x + r, y + r], fill=col)
                x += step
            y += step * 0.87
            row += 1
    elif spec.estampado == "rayas":
        step, w = 0.06 * s, 0.02 * s
        y = rng.uniform(0, step)
        # stripes follow the garment's rotation
        while y < H + step * 4:
            x0, y0 = -W * 0.2, y - step * 2
            x1, y1 = W * 1.2, y - step * 2 + (W * 1.4) * pen.sin / max(pen.cos, 1e-6)
            d.line([(x0, y0), (x1, y1)], fill=col, width=max(1, int(w)))
            y += step
    elif spec.estampado == "flores":
        palette = [(250, 250, 248), (250, 214, 60), (232, 70, 110), (250, 160, 190), (120, 60, 160)]
        palette = [c for c in palette if sum(abs(a - b) for a, b in zip(c, base)) > 120] or [col]
        n = int(W * H / (0.075 * s) ** 2)
        pr = 0.013 * s
        for _ in range(n):
            x, y = rng.uniform(0, W), rng.uniform(0, H)
            pc = rng.choice(palette)
            for k in range(5):
                a = 2 * math.pi * k / 5 + rng.uniform(0, 1)
                px, py = x + pr * math.cos(a), y + pr * math.sin(a)
                d.ellipse([px - pr * 0.75, py - pr * 0.75, px + pr * 0.75, py + pr * 0.75], fill=pc)
            d.ellipse([x - pr * 0.45, y - pr * 0.45, x + pr * 0.45, y + pr * 0.45], fill=(250, 200, 40) if pc != (250, 214, 60) else (140, 80, 30))


# --- entry point ------------------------------------------------------------------------------------

PARTS = {"remera": _top_parts, "camisa": _top_parts, "sweater": _top_parts, "campera": _top_parts,
         "vestido": _dress_parts, "pollera": _skirt_parts, "short": _short_parts, "jean": _jean_parts}


def draw(spec: Spec, rng: random.Random, size: tuple[int, int] | None = None, ss: int = 2) -> Image.Image:
    """Renders `spec` as an RGB product photo of `size` (random 128-224 px when None)."""
    if size is None:
        w = rng.randint(128, 224)
        h = w if rng.random() < 0.75 else min(224, int(w * rng.uniform(1.1, 1.3)))
        size = (w, h)
    w, h = size
    pen = Pen(w, h, ss, rng)
    bg = tuple(rng.randint(232, 252) for _ in range(3))
    bgmin = min(bg)
    bg = tuple(min(c, bgmin + 8) for c in bg)  # light, only slightly tinted
    canvas = Image.new("RGB", (pen.w, pen.h), bg)

    palette = RGB_DENIM if spec.material == "denim" else RGB
    base = _shade(palette[spec.color], rng.uniform(0.9, 1.1))
    if spec.color == "blanco":
        base = _shade(palette["blanco"], rng.uniform(0.97, 1.03))

    polys, geo = PARTS[spec.prenda](spec, rng)
    mask = Image.new("L", canvas.size, 0)
    md = ImageDraw.Draw(mask)
    for poly in polys:
        md.polygon(pen.pts(poly), fill=255)

    # soft drop shadow
    shadow = mask.filter(ImageFilter.GaussianBlur(3 * ss)).point(lambda a: int(a * 0.28))
    shadow = shadow.transform(shadow.size, Image.AFFINE, (1, 0, -3 * ss, 0, 1, -4 * ss))
    canvas.paste(_shade(bg, 0.55), mask=shadow)

    fill = Image.new("RGB", canvas.size, base)
    if spec.estampado:
        _pattern(fill, pen, spec, base, rng)
    # light from the top left
    grad = Image.linear_gradient("L").resize(canvas.size).point(lambda a: int(a * 0.16))
    fill.paste(_shade(base, 0.78), mask=grad)
    canvas.paste(fill, mask=mask)

    d = ImageDraw.Draw(canvas)
    outline = _shade(base, 0.6) if spec.color != "negro" else (12, 12, 14)
    if spec.color == "blanco":
        outline = (170, 170, 170)
    for poly in polys:
        pts = pen.pts(poly)
        d.line(pts + pts[:1], fill=outline, width=pen.px(0.006), joint="curve")
    plain = canvas.copy()
    _details(d, pen, spec, geo, base, rng)
    # details never spill outside the garment
    canvas = Image.composite(canvas, plain, mask.filter(ImageFilter.MaxFilter(3)))
    return canvas.resize((w, h), Image.LANCZOS)
