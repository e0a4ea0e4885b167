"""Two evals of the same suites side by side: per suite, the accuracy delta with a paired bootstrap
confidence interval (scipy.stats.bootstrap over the items both evals ran), and the items that flipped.

Each side is read in its best prompt format per suite (summary.json `best`), so a trained model in LFM2
format is compared with the better of the base model's LFM2 and plain-JSON prompts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def _load(eval_dir: Path) -> tuple[dict[str, Any], dict[tuple[str, str], dict[str, dict[str, Any]]]]:
    summary_path = eval_dir / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{eval_dir} is not an eval directory (no summary.json): run refinery eval first")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    rows: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for line in (eval_dir / "items.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        rows.setdefault((row["suite"], row["format"]), {})[row["id"]] = row
    return summary, rows


def _interval(a: np.ndarray, b: np.ndarray, level: float, seed: int) -> tuple[float, float]:
    from scipy.stats import bootstrap

    if len(a) < 2 or (np.all(a == a[0]) and np.all(b == b[0])):
        d = float(b.mean() - a.mean()) if len(a) else 0.0
        return d, d  # no variation to resample
    res = bootstrap((a, b), lambda x, y: np.mean(y) - np.mean(x), paired=True, vectorized=False,
                    n_resamples=2000, confidence_level=level, method="percentile", random_state=seed)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def compare(before: Path, after: Path, level: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """{suite: {n, before, after, delta, ci, before_format, after_format, fixed: [ids], broken: [ids]}}."""
    sa, ra = _load(before)
    sb, rb = _load(after)
    out: dict[str, Any] = {}
    for suite in [s for s in sa["best"] if s in sb["best"]]:
        fa, fb = sa["best"][suite]["format"], sb["best"][suite]["format"]
        a_rows, b_rows = ra.get((suite, fa), {}), rb.get((suite, fb), {})
        ids = sorted(set(a_rows) & set(b_rows))
        a = np.array([float(a_rows[i]["correct"]) for i in ids])
        b = np.array([float(b_rows[i]["correct"]) for i in ids])
        low, high = _interval(a, b, level, seed)
        out[suite] = {
            "n": len(ids), "before": round(float(a.mean()), 4) if ids else None,
            "after": round(float(b.mean()), 4) if ids else None,
            "delta": round(float(b.mean() - a.mean()), 4) if ids else None, "ci": [round(low, 4), round(high, 4)],
            "before_format": fa, "after_format": fb,
            "fixed": [i for i in ids if b_rows[i]["correct"] and not a_rows[i]["correct"]],
            "broken": [i for i in ids if a_rows[i]["correct"] and not b_rows[i]["correct"]],
        }
    return out
