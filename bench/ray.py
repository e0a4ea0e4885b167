"""The ray executor against the local one on this machine: the engine bench (4 cheap steps over N synthetic
samples) and the quickstart-shaped multi-turn recipe on the real embedded model, each run both ways.

    .venv/bin/python bench/ray.py                 # 1,000,000 samples
    .venv/bin/python bench/ray.py --n 200000 --skip-model

Both executors get the same 2 workers (Ray: started here with 2 CPUs, as `--executor ray` without
--address does). samples/s = input samples / wall time of the whole run, Ray's start-up included; peak RSS
summed over the process tree (Ray's raylet, GCS and workers are children of the driver here).
Last line: {"local_samples_per_s", "ray_samples_per_s", "ray_peak_rss_mb", "local_peak_rss_mb", "overhead",
"trials", "identical"}: trials = recipe runs compared, identical = how many gave byte-identical final.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _measure import PeakRSS  # noqa: E402
from engine import RECIPE  # noqa: E402

# This file is named ray.py: with its folder on sys.path before site-packages, `import ray` would import
# it, not Ray. The helpers above are imported; move the folder last.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]

from pipelines.core.executor import run_recipe  # noqa: E402
from pipelines.core.recipe import load_recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["steps.personas.n=6", "steps.chat.turns=1", "shard_size=2", "steps.chat.max_assistant_tokens=48",
         "steps.chat.max_user_tokens=32"]


def timed(recipe, run_dir: Path, executor: str) -> tuple[float, float]:
    with PeakRSS() as rss:
        t0 = time.perf_counter()
        run_recipe(recipe, run_dir, workers=2, executor=executor)
        seconds = time.perf_counter() - t0
    return seconds, rss.peak_mb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--shard-size", type=int, default=10_000)
    ap.add_argument("--skip-model", action="store_true", help="only the engine bench")
    args = ap.parse_args()
    trials = identical = 0
    with tempfile.TemporaryDirectory(prefix="refinery-bench-ray-") as tmp:
        tmp = Path(tmp)
        path = tmp / "engine.yaml"
        path.write_text(RECIPE.format(n=args.n, shard=args.shard_size))
        seconds, peak = {}, {}
        for executor in ("local", "ray"):
            seconds[executor], peak[executor] = timed(load_recipe(path), tmp / executor, executor)
            print(f"engine {executor}: {args.n / seconds[executor]:,.0f} samples/s ({seconds[executor]:.1f} s), "
                  f"peak RSS {peak[executor]} MB", file=sys.stderr)
        trials += 1
        identical += (tmp / "local" / "final.jsonl").read_bytes() == (tmp / "ray" / "final.jsonl").read_bytes()
        if not args.skip_model:
            recipe = load_recipe(ROOT / "recipes" / "multi_turn.yaml", QUICK)
            for executor in ("local", "ray"):
                s, p = timed(recipe, tmp / f"chat-{executor}", executor)
                print(f"multi_turn {executor}: {s:.1f} s, peak RSS {p} MB", file=sys.stderr)
            trials += 1
            identical += ((tmp / "chat-local" / "final.jsonl").read_bytes()
                          == (tmp / "chat-ray" / "final.jsonl").read_bytes())
    print(json.dumps({"local_samples_per_s": round(args.n / seconds["local"]),
                      "ray_samples_per_s": round(args.n / seconds["ray"]),
                      "ray_peak_rss_mb": peak["ray"], "local_peak_rss_mb": peak["local"],
                      "overhead": round(seconds["ray"] / seconds["local"], 2), "trials": trials,
                      "identical": identical}))


if __name__ == "__main__":
    main()
