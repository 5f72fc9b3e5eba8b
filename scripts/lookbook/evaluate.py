"""Runs the example suite (cases/) against lookbook checkpoints in Python: a reference for the Rust harness.

    .venv/bin/python scripts/lookbook/evaluate.py                     # checkpoint-a and checkpoint-b
    .venv/bin/python scripts/lookbook/evaluate.py --model lookbook/checkpoints/checkpoint-b -v

Reads cases/fitcheck.toml and every other cases/**/*.toml, resolves their selectors against the catalog's
manifest, ranks every catalog item by cosine similarity to the query (ties: item id descending), and prints
per case, with the case's k: MRR, precision@k (expected or yellow in the top k), accuracy (share of expected
items above every red item) and recall@k, checked against the thresholds. A case marked `known_failure`
reports XFAIL when it fails and XPASS when it passes (then the mark should go).

The model is loaded from its own files, as the Rust harness would: open_clip_config.json for the
architecture, model.safetensors (`model.` + open_clip names), tokenizer.json. Text goes through open_clip's
`canonicalize` cleaning, the tokenizer, truncation keeping `</s>`, and padding to the context with id 1.
Images: PIL open, convert('RGB'), squash-resize bicubic to the model's size, x / 127.5 - 1.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tinysiglip as T  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CASE_KEYS = {"description", "query_image", "variants", "expected", "yellow_flags", "red_flags", "k", "tags",
             "known_failure", "thresholds"}


def slug(text: str) -> str:
    """A phrasing's part of a variant's test name: letters and digits, lower case, other runs as '-'."""
    out = ""
    for ch in text.lower():
        if ch.isalnum():
            out += ch
        elif not out.endswith("-"):
            out += "-"
    return out.strip("-")


def expand_braces(pattern: str) -> list[str]:
    """`a-{x,y}-*` -> [`a-x-*`, `a-y-*`] (one level, as the case globs use it)."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m:
        return [pattern]
    return [p for alt in m.group(1).split(",") for p in expand_braces(pattern[:m.start()] + alt + pattern[m.end():])]
METRICS = ["mrr", "precision", "accuracy", "recall"]
IMAGE_EXT = {".png", ".jpg", ".jpeg"}


def parse_threshold(v) -> tuple[str, float]:
    if isinstance(v, (int, float)):
        return ">=", float(v)
    m = re.fullmatch(r"\s*(>=|>)\s*([0-9]*\.?[0-9]+)\s*", v)
    if not m:
        raise ValueError(f"bad threshold {v!r}")
    return m.group(1), float(m.group(2))


def meets(value: float, th: tuple[str, float]) -> bool:
    return value > th[1] if th[0] == ">" else value >= th[1]


class Catalog:
    def __init__(self, root: Path):
        self.root = root
        manifest = tomllib.loads((root / "manifest.toml").read_text())["items"]
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXT)
        self.paths = {p.relative_to(root).with_suffix("").as_posix(): p for p in files}
        self.ids = sorted(self.paths)
        self.tags = {i: set(manifest.get(i, [])) for i in self.ids}
        missing = set(manifest) - set(self.ids)
        assert not missing, f"manifest names items without an image: {sorted(missing)[:5]}"

    def select(self, selector: str) -> set[str]:
        if selector.startswith("tag:"):
            want = set(selector[4:].split("+"))
            return {i for i in self.ids if want <= self.tags[i]}
        if any(c in selector for c in "*?[{"):
            pats = expand_braces(selector)
            return {i for i in self.ids if any(fnmatch.fnmatchcase(i, p) for p in pats)}
        return {selector} if selector in self.paths else set()


def load_cases(cases_dir: Path, catalog: Catalog, defaults: dict) -> list[dict]:
    cases = []
    for path in sorted(cases_dir.rglob("*.toml")):
        if path.name == "fitcheck.toml" and path.parent == cases_dir:
            continue
        raw = tomllib.loads(path.read_text())
        name = path.relative_to(cases_dir).with_suffix("").as_posix()
        unknown = set(raw) - CASE_KEYS
        assert not unknown, f"{name}: unknown keys {unknown}"
        classes = {}
        for key in ("expected", "yellow_flags", "red_flags"):
            sel: set[str] = set()
            for s in raw.get(key, []):
                got = catalog.select(s)
                assert got, f"{name}: selector {s!r} matches no item"
                sel |= got
            classes[key] = sel
        E, Y = classes["expected"], classes["yellow_flags"]
        assert E, f"{name}: empty expected set"
        assert not (E & Y) and not (E & classes["red_flags"]) and not (Y & classes["red_flags"]), \
            f"{name}: an item is in two classes"
        R = classes["red_flags"] if "red_flags" in raw else set(catalog.ids) - E - Y
        th = dict(defaults["thresholds"])
        th.update({k: parse_threshold(v) for k, v in raw.get("thresholds", {}).items()})
        k = raw.get("k", defaults["k"])
        assert k > 0
        image = None
        if "query_image" in raw:
            q = raw["query_image"]
            image = catalog.paths[q] if q in catalog.paths else cases_dir / q
            assert image.is_file(), f"{name}: query image {q!r} not found"
        base = dict(E=E, Y=Y, R=R, k=k, thresholds=th, known_failure=raw.get("known_failure"),
                    tags=raw.get("tags", []), image=image)
        cases.append(dict(base, name=name, description=raw.get("description")))
        for v in raw.get("variants", []):
            cases.append(dict(base, name=f"{name}~{slug(v)}", description=v))
    assert cases, f"no cases found under {cases_dir}"
    return cases


def rank(scores: dict[str, float]) -> list[str]:
    ids = sorted(scores, reverse=True)  # id descending breaks ties (sort is stable)
    return sorted(ids, key=lambda i: -scores[i])


def metrics(ranking: list[str], scores: dict[str, float], E: set, Y: set, R: set, k: int) -> dict:
    pos = {i: n for n, i in enumerate(ranking)}
    top = set(ranking[:k])
    first = min(pos[i] for i in E)
    max_red = max((scores[i] for i in R), default=-np.inf)
    return {
        "mrr": 1.0 / (first + 1),
        "precision": len((E | Y) & top) / k,
        "accuracy": sum(scores[i] > max_red for i in E) / len(E),
        "recall": len(E & top) / len(E),
    }


@torch.no_grad()
def evaluate(model_dir: Path, catalog: Catalog, cases: list[dict], verbose: bool) -> dict:
    model, enc, size = T.load_checkpoint(model_dir)
    texts = [c["description"] for c in cases if c["image"] is None]
    _check_tokenizer(model_dir, enc, texts)
    x = torch.from_numpy(np.stack([T.preprocess(Image.open(catalog.paths[i]), size) for i in catalog.ids]))
    img = torch.cat([model.encode_image(x[s:s + 64], normalize=True) for s in range(0, len(x), 64)])
    txt = iter(model.encode_text(enc(texts), normalize=True))
    digest = {i: hashlib.sha256(catalog.paths[i].read_bytes()).hexdigest() for i in catalog.ids}
    results = []
    for c in cases:
        if c["image"] is None:
            query = next(txt)
            left_out = set()
        else:
            # An image query: the image itself and every catalog image with its content are left out.
            q = torch.from_numpy(T.preprocess(Image.open(c["image"]), size)[None])
            query = model.encode_image(q, normalize=True)[0]
            own = hashlib.sha256(Path(c["image"]).read_bytes()).hexdigest()
            left_out = {i for i in catalog.ids if digest[i] == own}
        row = (query @ img.T).numpy().astype(np.float64)
        scores = {i: s for i, s in zip(catalog.ids, row.tolist()) if i not in left_out}
        c = dict(c, E=c["E"] - left_out, Y=c["Y"] - left_out, R=c["R"] - left_out)
        ranking = rank(scores)
        m = metrics(ranking, scores, c["E"], c["Y"], c["R"], c["k"])
        ok = {name: meets(m[name], c["thresholds"][name]) for name in METRICS}
        passed = all(ok.values())
        status = ("XPASS" if passed else "xfail") if c["known_failure"] else ("pass" if passed else "FAIL")
        results.append(dict(name=c["name"], description=c["description"] or f"image {c['image']}", k=c["k"],
                            n_expected=len(c["E"]),
                            n_yellow=len(c["Y"]), metrics=m, ok=ok, status=status,
                            top=[(i, "E" if i in c["E"] else "Y" if i in c["Y"] else "R" if i in c["R"] else "-")
                                 for i in ranking[:c["k"]]]))
    return {"model": str(model_dir), "results": results}


def _check_tokenizer(model_dir: Path, enc, texts: list[str]) -> None:
    """open_clip's own HF tokenizer path (the one Marqo checkpoints use) must give the same ids as ours,
    and no query word may fall back to single characters (the model never saw such a word)."""
    from open_clip.tokenizer import HFTokenizer

    reference = HFTokenizer(str(model_dir), context_length=enc.ctx, clean="canonicalize")
    vocab = enc.tok.get_vocab()
    for t in texts:
        ours = enc.ids(t)
        theirs = reference([t])[0].tolist()
        assert ours == theirs, f"tokenizer mismatch on {t!r}: {ours} vs {theirs}"
        oov = [w for w in enc.clean(t).split() if "▁" + w not in vocab]
        if oov:
            print(f"warning: {t!r}: words unknown to the tokenizer: {oov}", file=sys.stderr)


def print_table(report: dict, verbose: bool) -> None:
    rs = report["results"]
    print(f"\n== {report['model']}")
    w = max(len(r["name"]) for r in rs)
    print(f"{'case':<{w}}  {'|E|':>3} {'|Y|':>3} {'k':>3}  {'mrr':>5} {'prec':>5} {'acc':>5} {'rec':>5}  status")
    for r in rs:
        m, ok = r["metrics"], r["ok"]
        cells = " ".join(f"{m[n]:5.2f}" if ok[n] else f"{m[n]:4.2f}!" for n in METRICS)
        print(f"{r['name']:<{w}}  {r['n_expected']:>3} {r['n_yellow']:>3} {r['k']:>3}  {cells}  {r['status']}")
        if verbose and r["status"] != "pass":
            print("      top: " + ", ".join(f"{i.split('/')[-1]}[{c}]" for i, c in r["top"]))
    means = {n: float(np.mean([r["metrics"][n] for r in rs])) for n in METRICS}
    counts = {s: sum(r["status"] == s for r in rs) for s in ("pass", "FAIL", "xfail", "XPASS")}
    print(f"{'mean':<{w}}  {'':>3} {'':>3} {'':>3}  " + " ".join(f"{means[n]:5.2f}" for n in METRICS))
    print("cases: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f" of {len(rs)}; suite "
          + ("passes" if counts["FAIL"] == 0 else "FAILS") + " ('!' marks a metric below its threshold)")
    report["means"], report["counts"] = means, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", type=Path, default=ROOT / "cases" / "fitcheck.toml")
    ap.add_argument("--model", type=Path, action="append",
                    help="checkpoint directory (repeatable; default: checkpoint-a and checkpoint-b)")
    ap.add_argument("--json", type=Path, help="write the full results here")
    ap.add_argument("-v", "--verbose", action="store_true", help="show the top k of cases that do not pass")
    args = ap.parse_args()
    torch.set_num_threads(1)

    suite = tomllib.loads(args.suite.read_text())
    base = args.suite.parent
    catalog = Catalog((base / suite["catalog"]["root"]).resolve())
    defaults = {"k": suite.get("defaults", {}).get("k", 5),
                "thresholds": {k: parse_threshold(v) for k, v in suite.get("thresholds", {}).items()}}
    for n in METRICS:
        defaults["thresholds"].setdefault(n, (">=", 0.0))
    cases = load_cases(base, catalog, defaults)
    models = args.model or [ROOT / "lookbook/checkpoints/checkpoint-a", (base / suite["model"]["path"]).resolve()]
    print(f"{len(cases)} cases, {len(catalog.ids)} catalog items")
    reports = []
    for m in models:
        rep = evaluate(m.resolve(), catalog, cases, args.verbose)
        print_table(rep, args.verbose)
        reports.append(rep)
    if args.json:
        args.json.write_text(json.dumps(reports, indent=1))


if __name__ == "__main__":
    main()
