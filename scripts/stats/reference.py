"""Writes tests/fixtures/stats/reference.json: scipy's answers for the paired comparisons in src/stats.rs.

For each pair of per-case metric vectors (baseline, candidate) it records
- the two-sided p-value of scipy.stats.permutation_test with permutation_type='samples' on the mean of
  candidate - baseline (exact when 2^n <= n_resamples, randomized otherwise);
- for randomized cases, the exact p-value too (every one of the 2^n sign vectors enumerated);
- scipy.stats.bootstrap's percentile interval of the same mean, and bands around each bound: the
  bootstrap distribution's percentiles at the bound's level plus and minus five standard deviations of
  the difference between two independent empirical quantile levels, sqrt(2 q (1 - q) / B). An
  independent run with other random draws lands inside the band unless something is wrong.

Run from the repository root:
    python scripts/stats/reference.py
"""

import json
import math
from pathlib import Path

import numpy as np
import scipy
from scipy import stats

RESAMPLES = 9999
CONFIDENCE = 0.95
OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "stats" / "reference.json"


def mean_diff(x, y, axis):
    return np.mean(y - x, axis=axis)


def mrr(ranks):
    return [1.0 / r for r in ranks]


def at5(hits):
    return [h / 5 for h in hits]


def vectors():
    """Per-case metric values as the harness produces them: ratios of small integers."""
    rng = np.random.default_rng(20250101)
    out = [
        ("n4_exact", at5([1, 2, 3, 4]), at5([2, 2, 5, 3])),
        ("n8_exact_mrr", mrr([1, 2, 1, 3, 5, 1, 2, 4]), mrr([1, 1, 1, 2, 2, 1, 1, 4])),
        (
            "n12_exact_ties",
            at5([5, 4, 3, 3, 2, 5, 1, 0, 4, 4, 3, 2]),
            at5([5, 5, 3, 4, 2, 5, 2, 0, 3, 5, 3, 4]),
        ),
        # 2^13 = 8192 <= 9999: the largest exact size.
        ("n13_exact_largest", at5([i % 6 for i in range(13)]), at5([min(i % 6 + (i % 3 == 0), 5) for i in range(13)])),
        ("n6_all_equal", at5([1, 2, 3, 4, 5, 0]), at5([1, 2, 3, 4, 5, 0])),
        ("n7_balanced", at5([1, 2, 3, 4, 5, 0, 2]), at5([2, 1, 4, 3, 5, 0, 2])),
    ]
    for name, n, shift in [("n14_random", 14, 0), ("n20_random", 20, 1), ("n30_random", 30, 2)]:
        base = rng.integers(0, 6, n)
        cand = np.clip(base + rng.integers(-1, 2 + shift, n), 0, 5)
        out.append((name, at5(base.tolist()), at5(cand.tolist())))
    return out


def band(distribution, q):
    delta = 5 * math.sqrt(2 * q * (1 - q) / RESAMPLES)
    lo, hi = np.percentile(distribution, [100 * max(q - delta, 0), 100 * min(q + delta, 1)])
    return [float(lo), float(hi)]


def main():
    cases = []
    for i, (name, base, cand) in enumerate(vectors()):
        x, y = np.array(base), np.array(cand)
        assert x.shape == y.shape
        n = len(x)
        exact = 2**n <= RESAMPLES
        perm = stats.permutation_test(
            (x, y),
            mean_diff,
            vectorized=True,
            permutation_type="samples",
            alternative="two-sided",
            n_resamples=RESAMPLES,
            random_state=np.random.default_rng(1000 + i),
        )
        case = {"name": name, "base": base, "cand": cand, "exact": exact, "p_value": float(perm.pvalue)}
        if not exact and n <= 20:
            full = stats.permutation_test(
                (x, y),
                mean_diff,
                vectorized=True,
                permutation_type="samples",
                alternative="two-sided",
                n_resamples=2**n,
                batch=1 << 15,
            )
            case["p_exact"] = float(full.pvalue)
        alpha = (1 - CONFIDENCE) / 2
        boot = stats.bootstrap(
            (y - x,),
            lambda d, axis: np.mean(d, axis=axis),
            vectorized=True,
            n_resamples=RESAMPLES,
            confidence_level=CONFIDENCE,
            method="percentile",
            random_state=np.random.default_rng(2000 + i),
        )
        case["ci_low"] = float(boot.confidence_interval.low)
        case["ci_high"] = float(boot.confidence_interval.high)
        case["ci_low_band"] = band(boot.bootstrap_distribution, alpha)
        case["ci_high_band"] = band(boot.bootstrap_distribution, 1 - alpha)
        cases.append(case)
        print(f"{name}: n={n} p={case['p_value']:.6f} ci=[{case['ci_low']:.4f}, {case['ci_high']:.4f}]")
    doc = {
        "generator": "scripts/stats/reference.py",
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "resamples": RESAMPLES,
        "confidence": CONFIDENCE,
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
