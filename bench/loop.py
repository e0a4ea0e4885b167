"""The closed loop at a fixed budget: does Refinery's data make the student better, and does the teacher matter?

Runs recipes/loop.yaml twice, the same size and the same student (SmolLM2-135M), once on data from the
default instruct teacher (embedded-qwen-0.5b) and once on data from the Gemma 3 270M base teacher; evaluates
the teacher itself through the same suites (the ceiling the student chases). Every run directory keeps its
caches and checkpoints, so the bench resumes where it stopped and may run in parts. Run by hand:

    .venv/bin/python bench/loop.py --personas 200 --problems 100 --eval-limit 100     # the issue's budget
    .venv/bin/python bench/loop.py --personas 24 --problems 12 --eval-limit 20        # the recipe's default

The last line is one JSON object: before/after per suite for the instruct-teacher loop, the Gemma-data
student's bfcl_simple, the teacher's bfcl_simple, and the minutes it took.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITES = ["bfcl_simple", "bfcl_multiple", "bfcl_parallel", "irrelevance", "gsm8k"]


def run_loop(run_dir: Path, teacher: str, personas: int, problems: int, limit: int, epochs: int) -> dict:
    overrides = [f"llm.model={teacher}", f"steps.personas.n={personas}", f"steps.problems.limit={problems}",
                 f"steps.eval_before.limit={limit}", f"steps.eval_after.limit={limit}",
                 f"steps.train.config.num_train_epochs={epochs}", f"steps.export.name=loop-{run_dir.name}"]
    cmd = [sys.executable, "-m", "pipelines.cli", "run", str(ROOT / "recipes" / "loop.yaml"), *overrides,
           "--run-dir", str(run_dir), "--no-progress"]
    subprocess.run(cmd, check=True, cwd=ROOT)
    return json.loads((run_dir / "compare-compare.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--personas", type=int, default=200, help="function-calling seeds")
    ap.add_argument("--problems", type=int, default=100, help="GSM8K train problems for reasoning")
    ap.add_argument("--eval-limit", type=int, default=100, help="items per eval suite")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=ROOT / "runs" / "bench_loop")
    args = ap.parse_args()
    started = time.monotonic()
    args.dir.mkdir(parents=True, exist_ok=True)
    qwen = run_loop(args.dir / "qwen", "embedded-qwen-0.5b", args.personas, args.problems, args.eval_limit, args.epochs)
    gemma = run_loop(args.dir / "gemma", "embedded-gemma-270m", args.personas, args.problems, args.eval_limit,
                     args.epochs)
    from pipelines.evals.runner import evaluate

    teacher = evaluate("embedded-qwen-0.5b", ["bfcl_simple"], args.dir / "teacher", limit=args.eval_limit)
    for name, result in (("instruct teacher", qwen), ("Gemma base teacher", gemma)):
        print(f"-- student trained on {name} data")
        for suite, r in result.items():
            print(f"{suite:20} {r['before']:.3f} -> {r['after']:.3f}  ({r['delta']:+.3f}, 95% "
                  f"[{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}], n={r['n']})")
    out = {f"{s}_{when}": qwen[s][when] for s in SUITES if s in qwen
           for when in ("before", "after")}
    out["after_with_gemma_data_bfcl_simple"] = gemma["bfcl_simple"]["after"]
    out["teacher_bfcl_simple"] = teacher["best"]["bfcl_simple"]["accuracy"]
    out["minutes"] = round((time.monotonic() - started) / 60, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
