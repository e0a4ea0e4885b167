"""Engine throughput and memory: a 4-step recipe of cheap steps (no model) over N synthetic samples,
with one and with two worker processes.

    .venv/bin/python bench/engine.py            # 1,000,000 samples
    .venv/bin/python bench/engine.py --n 100000

Last line: {"samples_per_s_1w": ..., "samples_per_s_2w": ..., "peak_rss_mb": ...}
samples/s = input samples / wall time of the whole run; peak RSS = summed over the main process and its
workers, the larger of the two runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import PeakRSS  # noqa: E402

from pipelines.core.executor import run_recipe  # noqa: E402
from pipelines.core.recipe import load_recipe  # noqa: E402

RECIPE = """\
name: bench-engine
shard_size: {shard}
steps:
  source: {{use: source.synthetic, n: {n}, seed: 0, duplicate_rate: 0.1}}
  length: {{use: filter.length, after: [source]}}
  dedup:  {{use: filter.exact_dedup, after: [length]}}
  final:  {{use: io.write_jsonl, after: [dedup]}}
"""


def one_run(n: int, shard: int, workers: int, root: Path) -> tuple[float, float, dict]:
    recipe = root / f"engine-{workers}.yaml"
    recipe.write_text(RECIPE.format(n=n, shard=shard))
    run_dir = root / f"run-{workers}"
    with PeakRSS() as rss:
        t0 = time.perf_counter()
        result = run_recipe(load_recipe(recipe), run_dir, workers=workers)
        seconds = time.perf_counter() - t0
    per_step = {k: round(v["seconds"], 1) for k, v in result.steps.items()}
    shutil.rmtree(run_dir)
    return n / seconds, rss.peak_mb, {"seconds": round(seconds, 1), "step_seconds": per_step,
                                       "final": result.steps["dedup"]["out"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--shard-size", type=int, default=10_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="refinery-bench-") as tmp:
        s1, rss1, d1 = one_run(args.n, args.shard_size, 1, Path(tmp))
        print(f"1 worker:  {s1:,.0f} samples/s, peak RSS {rss1} MB, {d1}", file=sys.stderr)
        s2, rss2, d2 = one_run(args.n, args.shard_size, 2, Path(tmp))
        print(f"2 workers: {s2:,.0f} samples/s, peak RSS {rss2} MB, {d2}", file=sys.stderr)
    print(json.dumps({"samples_per_s_1w": round(s1), "samples_per_s_2w": round(s2),
                      "peak_rss_mb": max(rss1, rss2)}))


if __name__ == "__main__":
    main()
